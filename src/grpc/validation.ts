import { pathToString } from "@bufbuild/protobuf/reflect";
import type { DescMessage, Message, MessageShape } from "@bufbuild/protobuf";
import type { FieldMask } from "@bufbuild/protobuf/wkt";
import { createValidator } from "@bufbuild/protovalidate";
import type { Violation } from "@bufbuild/protovalidate";
import { decoded } from "./adapter.js";
import type { Middleware } from "./adapter.js";
import { invalidArgument } from "./errors.js";
import { maskedPaths } from "./field-mask.js";
import { prechecks } from "./prechecks.js";

const validator = createValidator();

/**
 * An update (a request with an update_mask next to the resource) only checks
 * the resource fields it changes: `update_mask: "age"` must not fail because
 * the request leaves name empty.
 */
function outsideMask(request: Message, schema: DescMessage): (v: Violation) => boolean {
  const maskField = schema.fields.find((f) => f.name === "update_mask");
  if (maskField === undefined) return () => false;
  const values = request as unknown as Record<string, unknown>;
  const mask = values[maskField.localName] as FieldMask | undefined;
  return (v) => {
    const [top, field] = v.field;
    if (top?.kind !== "field" || field?.kind !== "field" || top.fieldKind !== "message") return false;
    const resource = values[top.localName] as MessageShape<DescMessage> | undefined;
    return resource !== undefined && !maskedPaths(top.message, resource, mask).has(field.name);
  };
}

/**
 * validateRequest enforces the protovalidate rules declared in the protos. A
 * violation is INVALID_ARGUMENT naming every offending field and rule, e.g.
 * `user.age: value must be greater than or equal to 0 and less than or equal to 150`.
 * A request a precheck proves valid (prechecks.ts) skips the CEL interpreter.
 */
export function validateRequest(schema: DescMessage, request: Message): void {
  if (prechecks.get(schema.typeName)?.accepts(request) === true) return;
  const result = validator.validate(schema, request);
  if (result.kind === "valid") return;
  if (result.kind === "error") throw result.error;
  const skip = outsideMask(request, schema);
  const violations = result.violations.filter((v) => !skip(v));
  if (violations.length === 0) return;
  throw invalidArgument(
    "INVALID_FIELDS",
    violations.map((v) => ({ field: pathToString(v.field), description: v.message, reason: v.ruleId })),
  );
}

/** validation runs validateRequest before any handler. */
export const validation: Middleware = (next) => (request, context) => {
  const message = decoded(context, request) as Message;
  validateRequest(context.descriptor.input, message);
  return next(message, context);
};
