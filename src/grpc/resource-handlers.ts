import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import type { IdempotentResult } from "../db/idempotency.js";
import type { WriteResult } from "../db/write-result.js";
import { ServiceError, errorInfo, invalidArgument, notFound, staleEtag } from "./errors.js";
import type { Resource } from "./errors.js";
import { expectedVersion } from "./etag.js";
import { requestHash } from "./request-hash.js";

// The handler halves of what every resource shares (AIP-133 create with a
// request_id, AIP-134 update and AIP-135 delete with etags): a resource's
// service says what its fields are; these say what the answers are.

/** reusedRequestId answers a request_id sent again with a different request (AIP-155). */
function reusedRequestId(): ServiceError {
  return invalidArgument("REQUEST_ID_REUSED", [
    { field: "request_id", description: "was already used for a different request; use a new UUID" },
  ]);
}

/** How a resource is created, plainly and at most once per request_id. */
export interface Creation<T> {
  create(): Promise<T>;
  createOnce(key: { requestId: string; method: string; requestHash: Buffer }): Promise<IdempotentResult<T>>;
}

/**
 * createResource creates plainly without a request_id; with one, at most
 * once (a retry replays the first result, a different request under the
 * same id is INVALID_ARGUMENT REQUEST_ID_REUSED).
 */
export async function createResource<S extends DescMessage, T>(
  resource: Resource,
  schema: S,
  request: MessageShape<S> & { requestId: string },
  creation: Creation<T>,
  method = `Create${resource[0]!.toUpperCase()}${resource.slice(1)}`,
): Promise<T> {
  if (request.requestId === "") return creation.create();
  const result = await creation.createOnce({
    requestId: request.requestId,
    method,
    requestHash: requestHash(schema, request),
  });
  if (result.kind === "reused") throw reusedRequestId();
  if (result.value === undefined) {
    throw new ServiceError(status.NOT_FOUND, `the ${resource} this request_id created has since been deleted`, [
      errorInfo(`${resource.toUpperCase()}_NOT_FOUND`, { requestId: request.requestId }),
    ]);
  }
  return result.value;
}

/** How a resource is read and changed by id. */
export interface Versioned<T, F> {
  get(id: bigint): Promise<T | undefined>;
  update(id: bigint, fields: F, expectedVersion: bigint | undefined): Promise<WriteResult<T>>;
}

/**
 * updateResource applies the fields an update_mask selected, only at the
 * etag's version when one was sent (ABORTED when stale). An update that
 * changes nothing returns the resource as it is, after the same checks.
 */
export async function updateResource<T extends { version: bigint }, F extends object>(
  resource: Resource,
  id: bigint,
  etag: string,
  fields: F,
  rows: Versioned<T, F>,
): Promise<T> {
  const version = expectedVersion(etag);
  if (Object.keys(fields).length === 0) {
    const current = await rows.get(id);
    if (current === undefined) throw notFound(resource, id);
    if (version !== undefined && version !== current.version) throw staleEtag(status.ABORTED, resource, id);
    return current;
  }
  return done(resource, id, await rows.update(id, fields, version), status.ABORTED);
}

/** deleteResource deletes by id, only at the etag's version when one was sent (FAILED_PRECONDITION when stale). */
export async function deleteResource(
  resource: Resource,
  id: bigint,
  etag: string,
  remove: (id: bigint, expectedVersion: bigint | undefined) => Promise<WriteResult<true>>,
): Promise<void> {
  done(resource, id, await remove(id, expectedVersion(etag)), status.FAILED_PRECONDITION);
}

function done<T>(resource: Resource, id: bigint, result: WriteResult<T>, staleCode: status): T {
  if (result.kind === "missing") throw notFound(resource, id);
  if (result.kind === "stale") throw staleEtag(staleCode, resource, id);
  return result.value;
}
