import { isFieldSet } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { FieldMask } from "@bufbuild/protobuf/wkt";

/**
 * maskedPaths returns the top-level fields an update touches (AIP-134): the
 * mask's paths when a mask is given, else every field of the resource that
 * holds a non-default value. Paths are the proto field names (snake_case).
 */
export function maskedPaths<M extends DescMessage>(
  schema: M,
  resource: MessageShape<M>,
  mask: FieldMask | undefined,
): Set<string> {
  if (mask !== undefined && mask.paths.length > 0) return new Set(mask.paths);
  return new Set(schema.fields.filter((f) => isFieldSet(resource, f)).map((f) => f.name));
}

/**
 * maskedFields reads the writable fields an update touches: `readers` names
 * each writable field (proto name) and how its stored value is read from the
 * resource; fields outside the mask are left out.
 */
export function maskedFields<M extends DescMessage, F extends object>(
  schema: M,
  resource: MessageShape<M>,
  mask: FieldMask | undefined,
  readers: { [K in keyof F]: (resource: MessageShape<M>) => F[K] },
): Partial<F> {
  const paths = maskedPaths(schema, resource, mask);
  const fields: Partial<F> = {};
  for (const key of Object.keys(readers) as (keyof F & string)[]) {
    if (paths.has(key)) fields[key] = readers[key](resource);
  }
  return fields;
}
