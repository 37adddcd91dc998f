import { Metadata, status } from "@grpc/grpc-js";
import type { StatusObject } from "@grpc/grpc-js";

/**
 * ServiceError is what handlers throw to answer with a gRPC status. Its
 * message goes to the caller as is, so it must never carry SQL, driver text or
 * a stack trace.
 */
export class ServiceError extends Error {
  override name = "ServiceError";

  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** notFound names the missing resource and id, e.g. "user 42 not found". */
export function notFound(resource: string, id: bigint | number | string): ServiceError {
  return new ServiceError(status.NOT_FOUND, `${resource} ${id} not found`);
}

/** Logs what the caller must not see: unexpected errors with their stacks. */
export type ErrorLogger = (error: unknown, message: string) => void;

/**
 * SQLSTATE classes and codes (PostgreSQL appendix A) mapped to gRPC codes.
 * Objection wraps driver errors (db-errors) but keeps the SQLSTATE on
 * `nativeError.code`; knex.raw surfaces the pg error itself.
 */
const sqlStateCodes: Record<string, { code: status; message: string }> = {
  "23505": { code: status.ALREADY_EXISTS, message: "already exists" },
  "23503": { code: status.FAILED_PRECONDITION, message: "refers to a row that does not exist" },
  "23514": { code: status.INVALID_ARGUMENT, message: "violates a check constraint" },
  "23502": { code: status.INVALID_ARGUMENT, message: "misses a required value" },
  "22": { code: status.INVALID_ARGUMENT, message: "holds a value the database cannot store" },
  "40001": { code: status.ABORTED, message: "conflicted with a concurrent transaction; retry" },
  "40P01": { code: status.ABORTED, message: "conflicted with a concurrent transaction; retry" },
  "57014": { code: status.DEADLINE_EXCEEDED, message: "took too long and was cancelled" },
  "08": { code: status.UNAVAILABLE, message: "could not reach the database; retry" },
  "53": { code: status.UNAVAILABLE, message: "the database is out of resources; retry" },
  "57P": { code: status.UNAVAILABLE, message: "the database is shutting down; retry" },
};

/** Node's socket errors that mean "the database is not reachable right now". */
const networkErrors = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"]);

function sqlState(error: unknown): string | undefined {
  const candidates = [error, (error as { nativeError?: unknown } | null)?.nativeError];
  for (const candidate of candidates) {
    const code = (candidate as { code?: unknown } | null)?.code;
    if (typeof code === "string") return code;
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
  const state = sqlState(error);
  if (state !== undefined && networkErrors.has(state)) {
    log(error, "database unreachable");
    return new ServiceError(status.UNAVAILABLE, "the database is unavailable; retry later");
  }
  const mapped =
    state === undefined
      ? undefined
      : (sqlStateCodes[state] ?? sqlStateCodes[state.slice(0, 3)] ?? sqlStateCodes[state.slice(0, 2)]);
  if (mapped !== undefined) {
    const constraint = (error as { constraint?: unknown }).constraint;
    const where = typeof constraint === "string" ? ` (constraint ${constraint})` : "";
    if (mapped.code === status.UNAVAILABLE || mapped.code === status.INTERNAL) log(error, "database error");
    return new ServiceError(mapped.code, `the request ${mapped.message}${where}`);
  }
  log(error, "unexpected error");
  return new ServiceError(status.INTERNAL, "internal error");
}

/** toStatus turns a ServiceError into what grpc-js sends. */
export function toStatus(error: ServiceError): Partial<StatusObject> {
  return { code: error.code, details: error.message, metadata: new Metadata() };
}

/**
 * required narrows a message field that protovalidate already checked
 * (`required = true`), so handlers need no non-null assertions.
 */
export function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new ServiceError(status.INVALID_ARGUMENT, `${field}: value is required`);
  return value;
}
