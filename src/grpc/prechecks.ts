import { createHash } from "node:crypto";
import { getOption, hasOption, toJsonString } from "@bufbuild/protobuf";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { usedTypes } from "@bufbuild/protobuf/reflect";
import {
  FieldRulesSchema,
  MessageRulesSchema,
  OneofRulesSchema,
  field as fieldRules,
  message as messageRules,
  oneof as oneofRules,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { BatchCreatePostsRequestSchema } from "../../gen/blog/v1/post_service_pb.js";
import type { BatchCreatePostsRequest } from "../../gen/blog/v1/post_service_pb.js";

/**
 * A Precheck proves a request valid without protovalidate's CEL interpreter,
 * for a request where the interpreter costs: BatchCreatePosts evaluates 7 CEL
 * rules for each of up to 1,000 posts, about 7 ms of CPU a call. It answers
 * only "valid" (true) or "not sure" (false), and is written so that it
 * accepts nothing protovalidate would refuse: a request it does not accept
 * goes to protovalidate, which decides and names the violations, so bad input
 * gets exactly the status and details it always got. It holds for the rules
 * it was written against, whose fingerprint (rulesFingerprint) it names: a
 * change to any rule of the request or of a message in it turns the precheck
 * off (prechecks.test.ts fails until it is reviewed and the fingerprint
 * updated).
 */
export interface Precheck<Schema extends DescMessage = DescMessage> {
  schema: Schema;
  rules: string;
  accepts(request: Message): boolean;
}

/**
 * rulesFingerprint digests the protovalidate rules of a message and of every
 * message its fields use (message, field and oneof rules), in declaration
 * order.
 */
export function rulesFingerprint(schema: DescMessage): string {
  const hash = createHash("sha256");
  for (const type of [schema, ...usedTypes(schema)]) {
    if (type.kind !== "message") continue;
    const rules = [type.typeName];
    if (hasOption(type, messageRules)) rules.push(toJsonString(MessageRulesSchema, getOption(type, messageRules)));
    for (const field of type.fields) {
      if (hasOption(field, fieldRules))
        rules.push(field.name, toJsonString(FieldRulesSchema, getOption(field, fieldRules)));
    }
    for (const oneof of type.oneofs) {
      if (hasOption(oneof, oneofRules))
        rules.push(oneof.name, toJsonString(OneofRulesSchema, getOption(oneof, oneofRules)));
    }
    hash.update(JSON.stringify(rules));
  }
  return hash.digest("hex").slice(0, 16);
}

/** The `string.uuid` rule's pattern, as protovalidate checks it. */
const uuid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * mayBeWhiteSpace holds for every UTF-16 unit that CEL's `trim()` (Unicode
 * White_Space: 0x09-0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000-0x200A, 0x2028,
 * 0x2029, 0x202F, 0x205F, 0x3000) could remove, and for some it keeps.
 */
function mayBeWhiteSpace(unit: number): boolean {
  return (
    unit <= 0x20 ||
    (unit >= 0x7f && unit <= 0xa0) ||
    unit === 0x1680 ||
    (unit >= 0x2000 && unit <= 0x206f) ||
    unit === 0x3000 ||
    unit === 0xfeff
  );
}

/**
 * batchCreatePosts accepts a BatchCreatePostsRequest that meets these rules:
 * user_id > 0; 1 to 1000 requests; request_id empty or a UUID; every request
 * with a post (required) whose user_id equals the batch's (so > 0) and an
 * empty request_id; a title without NUL of 1 to 300 UTF-16 units (so as many
 * code points or fewer, which `size()` counts) whose first unit is not white
 * space, so that `trim()` leaves 1 to 300 code points; content without NUL
 * of at most 100,000 UTF-16 units (so code points, which `max_len` counts).
 * Anything else (a title that starts with white space, text longer in UTF-16
 * units than in code points) is left to protovalidate.
 */
function batchCreatePosts(request: BatchCreatePostsRequest): boolean {
  const { userId, requests, requestId } = request;
  if (userId <= 0n || requests.length < 1 || requests.length > 1000) return false;
  if (requestId !== "" && !uuid.test(requestId)) return false;
  for (const { post, requestId: own } of requests) {
    if (post === undefined || own !== "" || post.userId !== userId) return false;
    const { title, content } = post;
    if (title.length < 1 || title.length > 300 || mayBeWhiteSpace(title.charCodeAt(0)) || title.includes("\0"))
      return false;
    if (content.length > 100_000 || content.includes("\0")) return false;
  }
  return true;
}

/** writtenPrechecks are the prechecks as written, each with the fingerprint of the rules it was written against. */
export const writtenPrechecks: readonly Precheck[] = [
  {
    schema: BatchCreatePostsRequestSchema,
    rules: "1953c276c2eb323c",
    accepts: (request) => batchCreatePosts(request as BatchCreatePostsRequest),
  },
];

/** prechecks are those whose rules are still the declared ones, by request type name. */
export const prechecks: ReadonlyMap<string, Precheck> = new Map(
  writtenPrechecks.filter((check) => rulesFingerprint(check.schema) === check.rules).map((c) => [c.schema.typeName, c]),
);
