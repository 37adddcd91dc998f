import knexFactory from "knex";
import type { Knex } from "knex";
import { knexSnakeCaseMappers } from "objection";
import pg from "pg";
import type { Logger } from "../log.js";

// int8 (ids, COUNT(*)) as bigint rather than string, so ids are bigint end to end.
pg.types.setTypeParser(pg.types.builtins.INT8, BigInt);

/** DatabaseOptions configures the pool and SQL logging. */
export interface DatabaseOptions {
  url: string;
  poolMax?: number;
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
  const started = new Map<string, bigint>();
  const ms = (uid: string) => Number(process.hrtime.bigint() - (started.get(uid) ?? 0n)) / 1e6;
  db.on("query", (q: QueryEvent) => started.set(q.__knexQueryUid, process.hrtime.bigint()));
  db.on("query-response", (_r: unknown, q: QueryEvent) => {
    log.info({ sql: q.sql, bindings: q.bindings, ms: ms(q.__knexQueryUid) }, "sql");
    started.delete(q.__knexQueryUid);
  });
  db.on("query-error", (e: Error, q: QueryEvent) => {
    log.info({ sql: q.sql, bindings: q.bindings, ms: ms(q.__knexQueryUid), error: e.message }, "sql failed");
    started.delete(q.__knexQueryUid);
  });
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
    acquireConnectionTimeout: 10_000,
    ...knexSnakeCaseMappers(),
  });
  if (options.logSql && options.log) logStatements(db, options.log);
  return db;
}
