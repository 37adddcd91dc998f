import { createHash } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";

/**
 * requestHash fingerprints a create request without its request_id, so a
 * retry is told apart from a different request reusing the same id.
 */
export function requestHash<M extends DescMessage>(schema: M, request: MessageShape<M>): Buffer {
  const withoutId = { ...request, requestId: "" } as MessageShape<M>;
  return createHash("sha256").update(toBinary(schema, withoutId)).digest();
}
