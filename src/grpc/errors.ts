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

/** errorDomain is the ErrorInfo.domain of every error this service raises. */
export const errorDomain = "blog.v1";

/** The trailer gRPC's rich error model (google.rpc.Status) travels in. */
export const statusDetailsKey = "grpc-status-details-bin";

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

/**
 * SQLSTATE classes and codes (PostgreSQL appendix A) mapped to gRPC codes.
 * Objection wraps driver errors (db-errors) but keeps the SQLSTATE on
 * `nativeError.code`; knex.raw surfaces the pg error itself.
 */
const concurrentUpdate: Mapped = {
  code: status.ABORTED,
  reason: "CONCURRENT_UPDATE",
  message: "conflicted with a concurrent transaction; retry",
};

const sqlStateCodes: Record<string, Mapped> = {
  "23505": { code: status.ALREADY_EXISTS, reason: "UNIQUE_VIOLATION", message: "already exists" },
  "23503": {
    code: status.FAILED_PRECONDITION,
    reason: "FOREIGN_KEY_VIOLATION",
    message: "refers to a row that does not exist",
  },
  "23514": { code: status.INVALID_ARGUMENT, reason: "CHECK_VIOLATION", message: "violates a check constraint" },
  "23502": { code: status.INVALID_ARGUMENT, reason: "NOT_NULL_VIOLATION", message: "misses a required value" },
  "22": { code: status.INVALID_ARGUMENT, reason: "INVALID_VALUE", message: "holds a value the database cannot store" },
  "40001": concurrentUpdate,
  "40P01": concurrentUpdate,
  "57014": { code: status.DEADLINE_EXCEEDED, reason: "QUERY_CANCELLED", message: "took too long and was cancelled" },
  "08": { code: status.UNAVAILABLE, reason: "DATABASE_UNAVAILABLE", message: "could not reach the database; retry" },
  "53": {
    code: status.UNAVAILABLE,
    reason: "DATABASE_UNAVAILABLE",
    message: "found the database out of resources; retry",
  },
  "57P": {
    code: status.UNAVAILABLE,
    reason: "DATABASE_UNAVAILABLE",
    message: "found the database shutting down; retry",
  },
};

/** Node's socket errors that mean "the database is not reachable right now". */
const networkErrors = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"]);

/** sqlState is a database error's SQLSTATE, from a pg error or Objection's wrapper of one. */
export function sqlState(error: unknown): string | undefined {
  const candidates = [error, (error as { nativeError?: unknown } | null)?.nativeError];
  for (const candidate of candidates) {
    const code = (candidate as { code?: unknown } | null)?.code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

const unreachable: Mapped = {
  code: status.UNAVAILABLE,
  reason: "DATABASE_UNAVAILABLE",
  message: "could not reach the database; retry",
};

function mapSqlState(state: string | undefined): Mapped | undefined {
  if (state === undefined) return undefined;
  if (networkErrors.has(state)) return unreachable;
  return sqlStateCodes[state] ?? sqlStateCodes[state.slice(0, 3)] ?? sqlStateCodes[state.slice(0, 2)];
}

/**
 * pg's errors (no SQLSTATE) for a connection that died under a query: the
 * server was killed or restarted. Knex prefixes them with the statement.
 */
const connectionLost =
  /(^|- )(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout expired$)/;

/**
 * lostDatabase recognises the errors that mean "no database right now" but
 * carry no SQLSTATE: Knex's pool timeout (KnexTimeoutError: no connection
 * could be had in time) and pg's lost-connection errors, also when Objection
 * wrapped them.
 */
function lostDatabase(error: unknown): Mapped | undefined {
  for (const candidate of [error, (error as { nativeError?: unknown } | null)?.nativeError]) {
    if (!(candidate instanceof Error)) continue;
    if (candidate.name === "KnexTimeoutError" || connectionLost.test(candidate.message)) return unreachable;
  }
  return undefined;
}

/**
 * toServiceError is the one place where any thrown value becomes a status a
 * caller may read. Database errors map by SQLSTATE to a generic, actionable
 * message naming the constraint (a schema name, never SQL); anything
 * unexpected is logged with its stack and answered as INTERNAL.
 */
export function toServiceError(error: unknown, log: ErrorLogger): ServiceError {
  if (error instanceof ServiceError) return error;
  const mapped = mapSqlState(sqlState(error)) ?? lostDatabase(error);
  if (mapped === undefined) {
    log(error, "unexpected error");
    return new ServiceError(status.INTERNAL, "internal error", [errorInfo("INTERNAL")]);
  }
  if (mapped.code === status.UNAVAILABLE) log(error, "database unavailable");
  const constraint = (error as { constraint?: unknown }).constraint;
  const metadata: Record<string, string> = typeof constraint === "string" ? { constraint } : {};
  const where = typeof constraint === "string" ? ` (constraint ${constraint})` : "";
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
