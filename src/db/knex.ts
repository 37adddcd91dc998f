import knexFactory from "knex";
import type { Knex } from "knex";
import { knexSnakeCaseMappers } from "objection";
import pg from "pg";
import type { Logger } from "../log.js";
import { parseHostList } from "./database-url.js";
import { NoWritablePrimary, isFailover } from "./errors.js";
import { connectionSettingsOf, discardConnection, onAcquireError, wrapDriverQuery } from "./knex-internals.js";
import { prepareStatements } from "./prepared-statements.js";
import type { PreparedStatementsMode } from "./prepared-statements.js";
import { PrimaryLocator, isReadOnly } from "./primary.js";
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
  /** preparedStatements is DATABASE_PREPARED_STATEMENTS; default auto (prepared unless through a pooler). */
  preparedStatements?: PreparedStatementsMode;
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

const applicationName = "blog-service";

/** The primary locator of each Knex instance made from a multi-host DATABASE_URL. */
const locators = new WeakMap<Knex, PrimaryLocator>();

/**
 * connectionSettingsFor is what a connection of its own to db's database
 * (health probe, migration lock) connects with: with a multi-host URL, the
 * primary's (found first if not known).
 */
export function connectionSettingsFor(db: Knex): Promise<pg.ClientConfig> {
  return locators.get(db)?.settings() ?? Promise.resolve(connectionSettingsOf(db));
}

/** primaryLocatorOf is db's locator when it was made from a multi-host URL (or target_session_attrs). */
export function primaryLocatorOf(db: Knex): PrimaryLocator | undefined {
  return locators.get(db);
}

/**
 * multiHost connects the pool through a PrimaryLocator: every new connection
 * goes to the host found writable (and checks it still is, as libpq does),
 * and a pooled connection to a host that is no longer the primary is
 * destroyed instead of handed out.
 */
function multiHost(locator: PrimaryLocator) {
  return {
    connection: async () => {
      const host = await locator.primary();
      return { ...locator.settingsFor(host), expirationChecker: () => !locator.isCurrent(host) };
    },
    pool: {
      validate: (connection: pg.Client) => locator.holds(connection),
      afterCreate: (connection: pg.Client, done: (error: unknown, connection: pg.Client) => void) => {
        if (!locator.writable) return done(null, connection);
        isReadOnly(connection).then(
          (readOnly) => {
            if (!readOnly) return done(null, connection);
            locator.forget(connection);
            done(new NoWritablePrimary([`${connection.host}:${connection.port}`], true), connection);
          },
          (error: unknown) => done(error, connection),
        );
      },
    },
  };
}

/**
 * createDatabase is the service's one Knex instance: pg driver, snake_case
 * columns in PostgreSQL and camelCase in code, a bounded pool. A URL with
 * several hosts (libpq's form) connects to the writable one and follows it
 * through a failover. In every case a connection whose statement failed
 * because its server went away, is shutting down or has become read-only is
 * dropped from the pool rather than reused.
 */
export function createDatabase(options: DatabaseOptions): Knex {
  const hosts = parseHostList(options.url);
  const locator =
    hosts && new PrimaryLocator(hosts, { applicationName, log: options.log, probeTimeoutMs: options.acquireTimeoutMs });
  const pool = { min: 0, max: options.poolMax ?? 10 };
  const multi = locator && multiHost(locator);
  const db = knexFactory({
    client: "pg",
    connection: multi?.connection ?? { connectionString: options.url, application_name: applicationName },
    pool: { ...pool, ...multi?.pool },
    // A saturated pool answers quickly (UNAVAILABLE) instead of queueing without bound.
    acquireConnectionTimeout: options.acquireTimeoutMs ?? 2_000,
    ...knexSnakeCaseMappers(),
    // Knex's own warnings (e.g. "Acquire connection error" during an outage) go
    // to the service log as JSON, not to the console.
    ...(options.log && { log: knexLog(options.log) }),
  });
  if (options.logSql && options.log) observeStatements(db, [sqlLog(options.log)]);
  // Each wrapper of the driver step runs inside the ones added after it: the
  // call's bounds cover everything prepared statements send (the pooler
  // question, DEALLOCATE ALL, a retry), and the failover check sees it all.
  prepareStatements(db, { mode: options.preparedStatements ?? "auto", log: options.log });
  boundStatementsToCalls(db);
  // At the driver step, so that statements in transactions (COMMIT included) are seen too.
  wrapDriverQuery(
    db,
    (query) => (connection, statement) =>
      query(connection, statement).catch((error: unknown) => {
        if (isFailover(error)) {
          discardConnection(connection, error);
          locator?.forget(connection);
        }
        throw error;
      }),
  );
  if (locator !== undefined) {
    locators.set(db, locator);
    // The known primary refused a new connection (or dropped it while connecting): look again next time.
    onAcquireError(db, (error) => isFailover(error) && locator.forget());
  }
  return db;
}
