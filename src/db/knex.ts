import knexFactory from "knex";
import type { Knex } from "knex";
import { knexSnakeCaseMappers } from "objection";
import pg from "pg";
import type { Logger } from "../log.js";
import { boundStatementsToCalls } from "./statement-bounds.js";
import { observeStatements } from "./statements.js";
import type { StatementObserver } from "./statements.js";

// int8 (ids, COUNT(*)) as bigint rather than string, so ids are bigint end to end. pg keeps
// one parser registry per process: importing this module sets it for every pg client,
// including the raw ones of health probes, tests and tools.
pg.types.setTypeParser(pg.types.builtins.INT8, BigInt);

/** DatabaseOptions configures the pool and SQL logging. */
export interface DatabaseOptions {
  url: string;
  poolMax?: number;
  /** acquireTimeoutMs is how long a statement may wait for a pooled connection. */
  acquireTimeoutMs?: number;
  /** logSql logs every statement with its bindings and duration (LOG_SQL). */
  logSql?: boolean;
  log?: Logger;
}

/** sqlLog writes every statement with its bindings and duration (LOG_SQL). */
function sqlLog(log: Logger): StatementObserver {
  return {
    end(statement, error) {
      const ms = Number(process.hrtime.bigint() - statement.startedAt) / 1e6;
      const line = { sql: statement.sql, bindings: statement.bindings, ms, requestId: statement.call?.requestId };
      if (error === undefined) log.info(line, "sql");
      else log.info({ ...line, error: error.message }, "sql failed");
    },
  };
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
  if (options.logSql && options.log) observeStatements(db, [sqlLog(options.log)]);
  boundStatementsToCalls(db);
  return db;
}
