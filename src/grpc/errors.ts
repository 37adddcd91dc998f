import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import type { Any } from "@bufbuild/protobuf/wkt";
import { Metadata, status } from "@grpc/grpc-js";
import type { StatusObject } from "@grpc/grpc-js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { FeedPositionAhead, FeedPositionExpired } from "../db/change-feed.js";
import { CallCancelled, DeadlineExceeded, MissingReference, classify } from "../db/errors.js";
import type { DatabaseFailure } from "../db/errors.js";
import { InvalidInput } from "../list/invalid-input.js";
import { statusDetailsKey } from "../protocol/keys.js";

/** errorDomain is the ErrorInfo.domain of every error this service raises. */
export const errorDomain = "blog.v1";

/**
 * ServiceError is what handlers throw to answer with a gRPC status. Its
 * message goes to the caller as is, so it must never carry SQL, driver text or
 * a stack trace; its details (google.rpc.ErrorInfo, BadRequest, ...) travel in
 * the grpc-status-details-bin trailer.
 */
export class ServiceError extends Error {
  override name = "ServiceError";

  constructor(
    readonly code: status,
    message: string,
    readonly details: Any[] = [],
  ) {
    super(message);
  }
}

/** errorInfo is the machine-readable reason (UPPER_SNAKE_CASE) every error carries. */
export function errorInfo(reason: string, metadata: Record<string, string> = {}): Any {
  return anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: errorDomain, metadata }));
}

/** A field that broke a rule: the path (`user.name`), what is wrong, and the rule's id. */
export interface FieldViolation {
  field: string;
  description: string;
  reason?: string;
}

/** maxViolations bounds how many violations one status lists (fewer when their text is long). */
export const maxViolations = 20;

/** invalidArgument lists the violations (up to maxViolations) in the message and in one BadRequest. */
export function invalidArgument(reason: string, violations: FieldViolation[]): ServiceError {
  // A status travels in HTTP/2 trailers, which clients cap (gRPC C-core at 8-16 KiB, Node at 64 KiB):
  // a batch of 1000 bad items names the first few, and says how many more there are.
  const lines = violations.map((v) => (v.field === "" ? v.description : `${v.field}: ${v.description}`));
  let shown = Math.min(violations.length, maxViolations);
  while (shown > 1 && lines.slice(0, shown).join("; ").length > maxMessageLength - 32) shown--;
  const more = violations.length - shown;
  const message = lines.slice(0, shown).join("; ") + (more > 0 ? `; and ${more} more` : "");
  const badRequest = create(BadRequestSchema, {
    fieldViolations: violations
      .slice(0, shown)
      .map((v) => ({ field: v.field, description: v.description, reason: v.reason ?? "" })),
  });
  return new ServiceError(status.INVALID_ARGUMENT, message, [errorInfo(reason), anyPack(BadRequestSchema, badRequest)]);
}

const resourceTypes = { user: "blog.v1.User", post: "blog.v1.Post" } as const;

/** A resource kind of this service, as used in messages ("user 42 not found"). */
export type Resource = keyof typeof resourceTypes;

/** notFound names the missing resource and id, e.g. "user 42 not found". */
export function notFound(resource: Resource, id: bigint | number | string): ServiceError {
  return new ServiceError(status.NOT_FOUND, `${resource} ${id} not found`, [
    errorInfo(`${resource.toUpperCase()}_NOT_FOUND`, { id: String(id) }),
    anyPack(
      ResourceInfoSchema,
      create(ResourceInfoSchema, { resourceType: resourceTypes[resource], resourceName: `${resource}s/${id}` }),
    ),
  ]);
}

/** staleEtag answers a write whose etag no longer matches (AIP-154). */
export function staleEtag(code: status, resource: Resource, id: bigint): ServiceError {
  return new ServiceError(code, `${resource} ${id} has changed since it was read (etag mismatch); read it again`, [
    errorInfo("ETAG_MISMATCH", { id: String(id) }),
    anyPack(
      PreconditionFailureSchema,
      create(PreconditionFailureSchema, {
        violations: [{ type: "ETAG", subject: `${resource}s/${id}`, description: "the etag is not the current one" }],
      }),
    ),
  ]);
}

/** Logs what the caller must not see: unexpected errors with their stacks. */
export type ErrorLogger = (error: unknown, message: string) => void;

interface Mapped {
  code: status;
  reason: string;
  message: string;
}

const retryLater = (message: string): Mapped => ({ code: status.UNAVAILABLE, reason: "DATABASE_UNAVAILABLE", message });

/** The one table from the database layer's failures to what a caller is told. */
const databaseStatuses: Record<DatabaseFailure, Mapped> = {
  "unique-violation": { code: status.ALREADY_EXISTS, reason: "UNIQUE_VIOLATION", message: "already exists" },
  "foreign-key-violation": {
    code: status.FAILED_PRECONDITION,
    reason: "FOREIGN_KEY_VIOLATION",
    message: "refers to a row that does not exist",
  },
  "check-violation": {
    code: status.INVALID_ARGUMENT,
    reason: "CHECK_VIOLATION",
    message: "violates a check constraint",
  },
  "not-null-violation": {
    code: status.INVALID_ARGUMENT,
    reason: "NOT_NULL_VIOLATION",
    message: "misses a required value",
  },
  "invalid-value": {
    code: status.INVALID_ARGUMENT,
    reason: "INVALID_VALUE",
    message: "holds a value the database cannot store",
  },
  conflict: {
    code: status.ABORTED,
    reason: "CONCURRENT_UPDATE",
    message: "conflicted with a concurrent transaction; retry",
  },
  "statement-cancelled": {
    code: status.DEADLINE_EXCEEDED,
    reason: "QUERY_CANCELLED",
    message: "took too long and was cancelled",
  },
  unreachable: retryLater("could not reach the database; retry"),
  "out-of-resources": retryLater("found the database out of resources; retry"),
  "shutting-down": retryLater("found the database shutting down; retry"),
  "read-only": retryLater("reached a database that is no longer the primary; retry"),
};

/**
 * toServiceError is the one place where any thrown value becomes a status a
 * caller may read: the neutral errors of the lower layers (list input,
 * missing references, deadlines, database failures) map here. Database
 * errors get a generic, actionable message naming the constraint (a schema
 * name, never SQL); anything unexpected is logged with its stack and
 * answered as INTERNAL.
 */
export function toServiceError(error: unknown, log: ErrorLogger): ServiceError {
  if (error instanceof ServiceError) return error;
  if (error instanceof InvalidInput) return invalidArgument(error.reason, [error.violation]);
  if (error instanceof MissingReference) return notFound(error.resource as Resource, error.id);
  if (error instanceof DeadlineExceeded) {
    return new ServiceError(status.DEADLINE_EXCEEDED, error.message, [errorInfo("DEADLINE_EXCEEDED")]);
  }
  if (error instanceof CallCancelled) return new ServiceError(status.CANCELLED, error.message);
  if (error instanceof FeedPositionExpired) {
    return new ServiceError(
      status.OUT_OF_RANGE,
      "resume_token: is older than the change feed's retention; list again and watch from the list's watch_token",
      [errorInfo("RESUME_TOKEN_EXPIRED", { prunedThrough: String(error.prunedThrough) })],
    );
  }
  if (error instanceof FeedPositionAhead) {
    return new ServiceError(
      status.OUT_OF_RANGE,
      "resume_token: is past the end of this database's change feed (a token of another database, or from before a restore); list again and watch from the list's watch_token",
      [errorInfo("RESUME_TOKEN_AHEAD")],
    );
  }
  const classified = classify(error);
  if (classified === undefined) {
    log(error, "unexpected error");
    return new ServiceError(status.INTERNAL, "internal error", [errorInfo("INTERNAL")]);
  }
  const mapped = databaseStatuses[classified.failure];
  if (mapped.code === status.UNAVAILABLE) log(error, "database unavailable");
  const { constraint } = classified;
  const metadata: Record<string, string> = constraint === undefined ? {} : { constraint };
  const where = constraint === undefined ? "" : ` (constraint ${constraint})`;
  return new ServiceError(mapped.code, `the request ${mapped.message}${where}`, [errorInfo(mapped.reason, metadata)]);
}

/**
 * toStatus turns a ServiceError into what grpc-js sends: code, message, and a
 * google.rpc.Status in the grpc-status-details-bin trailer.
 */
export function toStatus(error: ServiceError): Partial<StatusObject> {
  const metadata = new Metadata();
  const details = error.details.length > 0 ? error.details : [errorInfo(status[error.code])];
  const message = bounded(error.message);
  const rich = create(StatusSchema, { code: error.code, message, details });
  metadata.set(statusDetailsKey, Buffer.from(toBinary(StatusSchema, rich)));
  return { code: error.code, details: message, metadata };
}

/** maxMessageLength keeps a message that echoes a long input well inside every client's trailer limit. */
export const maxMessageLength = 1024;

function bounded(message: string): string {
  if (message.length <= maxMessageLength) return message;
  let end = maxMessageLength - 1;
  if (/[\uD800-\uDBFF]/.test(message[end - 1]!)) end--; // never split a surrogate pair (grpc-js encodeURI()s it)
  return `${message.slice(0, end)}…`;
}

/**
 * required narrows a message field that protovalidate already checked
 * (`required = true`), so handlers need no non-null assertions.
 */
export function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw invalidArgument("INVALID_FIELDS", [{ field, description: "value is required" }]);
  return value;
}
