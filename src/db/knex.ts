import knexFactory from "knex";
import type { Knex } from "knex";
import { knexSnakeCaseMappers } from "objection";
import pg from "pg";
import type { Logger } from "../log.js";
import { boundStatementsToCalls } from "./call-deadlines.js";
import { currentCall } from "../observability/call-scope.js";

// int8 (ids, COUNT(*)) as bigint rather than string, so ids are bigint end to end.
pg.types.setTypeParser(pg.types.builtins.INT8, BigInt);

/** DatabaseOptions configures the pool and SQL logging. */
export interface DatabaseOptions {
  url: string;
  poolMax?: number;
  /** acquireTimeoutMs is how long a statement may wait for a pooled connection. */
  acquireTimeoutMs?: number;
  /** logSql logs every statement with its bindings and duration (the demo's echo=True). */
  logSql?: boolean;
  log?: Logger;
}

interface QueryEvent {
  sql: string;
  bindings?: readonly unknown[];
  __knexQueryUid: string;
}

function logStatements(db: Knex, log: Logger): void {
  // Knex emits `query` in the caller's async context: remember which call (request id) sent it.
  const started = new Map<string, { at: bigint; requestId: string | undefined }>();
  const fields = (q: QueryEvent) => {
    const start = started.get(q.__knexQueryUid);
    started.delete(q.__knexQueryUid);
    const ms = Number(process.hrtime.bigint() - (start?.at ?? 0n)) / 1e6;
    return { sql: q.sql, bindings: q.bindings, ms, requestId: start?.requestId };
  };
  db.on("query", (q: QueryEvent) =>
    started.set(q.__knexQueryUid, { at: process.hrtime.bigint(), requestId: currentCall()?.requestId }),
  );
  db.on("query-response", (_r: unknown, q: QueryEvent) => log.info(fields(q), "sql"));
  db.on("query-error", (e: Error, q: QueryEvent) => log.info({ ...fields(q), error: e.message }, "sql failed"));
}

function knexLog(log: Logger): Knex.Logger {
  const write = (level: "warn" | "error" | "debug") => (message: unknown) =>
    log[level]({ knex: typeof message === "string" ? message : String(message) }, "knex");
  return { warn: write("warn"), error: write("error"), deprecate: write("warn"), debug: write("debug") };
}

/**
 * createDatabase is the service's one Knex instance: pg driver, snake_case
 * columns in PostgreSQL and camelCase in code, a bounded pool.
 */
export function createDatabase(options: DatabaseOptions): Knex {
  const db = knexFactory({
    client: "pg",
    connection: { connectionString: options.url, application_name: "blog-service" },
    pool: { min: 0, max: options.poolMax ?? 10 },
    // A saturated pool answers quickly (UNAVAILABLE) instead of queueing without bound.
    acquireConnectionTimeout: options.acquireTimeoutMs ?? 2_000,
    ...knexSnakeCaseMappers(),
    // Knex's own warnings (e.g. "Acquire connection error" during an outage) go
    // to the service log as JSON, not to the console.
    ...(options.log && { log: knexLog(options.log) }),
  });
  if (options.logSql && options.log) logStatements(db, options.log);
  boundStatementsToCalls(db);
  return db;
}
