/**
 * The database layer's own words for what went wrong. Every SQLSTATE and
 * driver message this service knows is read here, and nowhere else: callers
 * get a `DatabaseFailure` kind and map it (src/grpc/errors.ts maps it to a
 * status). Objection wraps constraint errors in db-errors' typed classes
 * (UniqueViolationError, ...) but knex.raw does not, so the SQLSTATE, which
 * both carry, is what is read.
 */

/** DatabaseFailure is a class of database error a caller can act on. */
export type DatabaseFailure =
  | "unique-violation"
  | "foreign-key-violation"
  | "check-violation"
  | "not-null-violation"
  | "invalid-value"
  | "conflict"
  | "statement-cancelled"
  | "unreachable"
  | "out-of-resources"
  | "shutting-down"
  | "read-only";

/** Classified is a database error's class and, for constraint violations, the constraint's name. */
export interface Classified {
  readonly failure: DatabaseFailure;
  readonly constraint: string | undefined;
}

/** SQLSTATE codes and classes (PostgreSQL appendix A), longest prefix first. */
const sqlStates: Record<string, DatabaseFailure> = {
  "23505": "unique-violation",
  "23503": "foreign-key-violation",
  "23514": "check-violation",
  "23502": "not-null-violation",
  "22": "invalid-value",
  "40001": "conflict",
  "40P01": "conflict",
  "57014": "statement-cancelled",
  "08": "unreachable",
  "53": "out-of-resources",
  "57P": "shutting-down",
  "25006": "read-only",
};

/** Node's socket errors that mean "the database is not reachable right now". */
const networkErrors = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"]);

/**
 * pg's errors (no SQLSTATE) for a connection that died under a query: the
 * server was killed or restarted. Knex prefixes them with the statement.
 */
const connectionLost =
  /(^|- )(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout expired$)/;

/** The error and, when Objection wrapped a driver error, the driver's own. */
function layers(error: unknown): unknown[] {
  return [error, (error as { nativeError?: unknown } | null)?.nativeError];
}

/** sqlState is a database error's SQLSTATE (or Node socket code), from a pg error or Objection's wrapper of one. */
function sqlState(error: unknown): string | undefined {
  for (const layer of layers(error)) {
    const code = (layer as { code?: unknown } | null)?.code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/**
 * PostgreSQL's SQLSTATE 0A000 (feature not supported) for a prepared
 * statement whose result columns a schema change altered. In a transaction
 * it aborts the transaction (outside one, the statement is prepared afresh
 * and run again: src/db/prepared-statements.ts); the call may be retried, as
 * after a serialization failure.
 */
const stalePlan = /cached plan must not change result type/;

/** isStalePlan tells a prepared statement refused because a schema change altered its result columns. */
export function isStalePlan(error: unknown): boolean {
  return sqlState(error) === "0A000" && layers(error).some((l) => l instanceof Error && stalePlan.test(l.message));
}

function failureOf(error: unknown): DatabaseFailure | undefined {
  const state = sqlState(error);
  if (isStalePlan(error)) return "conflict";
  if (state !== undefined) {
    if (networkErrors.has(state)) return "unreachable";
    const known = sqlStates[state] ?? sqlStates[state.slice(0, 3)] ?? sqlStates[state.slice(0, 2)];
    if (known !== undefined) return known;
  }
  // Knex's pool timeout (no connection could be had in time) and pg's lost connections carry no SQLSTATE.
  for (const layer of layers(error)) {
    if (layer instanceof NoWritablePrimary) return layer.reachable ? "read-only" : "unreachable";
    if (!(layer instanceof Error)) continue;
    if (layer.name === "KnexTimeoutError" || connectionLost.test(layer.message)) return "unreachable";
  }
  return undefined;
}

/** classify tells what a thrown database error means, or undefined when it is not one this layer knows. */
export function classify(error: unknown): Classified | undefined {
  const failure = failureOf(error);
  if (failure === undefined) return undefined;
  const constraint = (error as { constraint?: unknown }).constraint;
  return { failure, constraint: typeof constraint === "string" ? constraint : undefined };
}

/** The failures after which the same call may succeed against a database that answers again. */
const unavailable = new Set<DatabaseFailure>(["unreachable", "out-of-resources", "shutting-down", "read-only"]);

/**
 * isUnavailable is true for errors that mean "no usable database right now"
 * (refused, lost, pool timeout, shutting down, a demoted read-only primary):
 * health and the replica set judge servers by it.
 */
export function isUnavailable(error: unknown): boolean {
  const failure = failureOf(error);
  return failure !== undefined && unavailable.has(failure);
}

/**
 * isFailover is true for errors that say the connection's server is gone or
 * no longer the primary (lost, refused, shutting down, read-only): the
 * connection is dropped and the primary looked for again. A pool timeout is
 * not one: it says the pool is busy, not where the primary is.
 */
export function isFailover(error: unknown): boolean {
  const failure = failureOf(error);
  if (failure !== "unreachable" && failure !== "shutting-down" && failure !== "read-only") return false;
  return !layers(error).some((layer) => layer instanceof Error && layer.name === "KnexTimeoutError");
}

/** isRecoveryConflict is SQLSTATE 40001 from a standby: a query cancelled by WAL replay, worth retrying elsewhere. */
export function isRecoveryConflict(error: unknown): boolean {
  return sqlState(error) === "40001";
}

/** isForeignKeyViolation is true for a row that refers to one that does not exist (SQLSTATE 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  return failureOf(error) === "foreign-key-violation";
}

/**
 * NoWritablePrimary: none of DATABASE_URL's hosts takes writes right now
 * (down, or a standby, or a promoted standby that the failover manager still
 * keeps read-only). reachable says whether any of them answered at all.
 */
export class NoWritablePrimary extends Error {
  override name = "NoWritablePrimary";
  constructor(
    readonly hosts: readonly string[],
    readonly reachable: boolean,
  ) {
    super(
      `no writable primary among ${hosts.join(", ")} (${reachable ? "the ones that answer are read-only" : "none answers"})`,
    );
  }
}

/** DeadlineExceeded: the call's deadline passed before (or while) a statement ran; the statement was cancelled. */
export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
  constructor() {
    super("the deadline passed before the database answered");
  }
}

/** CallCancelled: the caller went away before a statement ran. */
export class CallCancelled extends Error {
  override name = "CallCancelled";
  constructor() {
    super("the call was cancelled");
  }
}

/** MissingReference: a write named a row that does not exist (a post for a user that is gone). */
export class MissingReference extends Error {
  override name = "MissingReference";
  constructor(
    readonly resource: string,
    readonly id: bigint,
  ) {
    super(`${resource} ${id} not found`);
  }
}
