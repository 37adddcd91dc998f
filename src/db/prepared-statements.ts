import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { Logger } from "../log.js";
import { isStalePlan } from "./errors.js";
import { wrapDriverQuery } from "./knex-internals.js";
import type { DriverQuery, DriverStatement, RawConnection } from "./knex-internals.js";
import { throughPooler } from "./pooler.js";
import type { KeyedClient } from "./pooler.js";

/**
 * PreparedStatementsMode is DATABASE_PREPARED_STATEMENTS: `auto` prepares on
 * connections that reach PostgreSQL directly and not through a pooler, `on`
 * everywhere (a pooler that keeps protocol-level prepared statements), `off`
 * nowhere.
 */
export type PreparedStatementsMode = "auto" | "on" | "off";

/** defaultMaxNames bounds the distinct statement texts one pool prepares (so each of its backends holds at most this many). */
export const defaultMaxNames = 200;

/**
 * StatementNames names statement texts, a bounded number of them: a text
 * gets a name (from its hash) the second time it is seen, so one-off texts
 * (a listing's rare filter) stay unnamed, and once maxNames texts have names
 * every other text runs unnamed. Texts that vary without bound (an IN list
 * per batch size) therefore cost at most maxNames prepared statements per
 * connection.
 */
export class StatementNames {
  private readonly named = new Map<string, string>();
  private readonly seen = new Set<string>();

  constructor(private readonly maxNames: number) {}

  nameOf(sql: string): string | undefined {
    const name = this.named.get(sql);
    if (name !== undefined || this.named.size >= this.maxNames) return name;
    if (!this.seen.delete(sql)) {
      // Texts seen once are forgotten wholesale when too many pile up.
      if (this.seen.size >= this.maxNames * 4) this.seen.clear();
      this.seen.add(sql);
      return undefined;
    }
    const named = `blog_${createHash("sha256").update(sql).digest("hex").slice(0, 24)}`;
    this.named.set(sql, named);
    return named;
  }
}

/**
 * A pg client as prepared statements see it. pg keeps the names it has
 * prepared on a connection in `connection.parsedStatements`, which is not
 * public API.
 */
interface PgClient extends RawConnection, KeyedClient {
  getTransactionStatus(): string | null;
  connection: { parsedStatements: Record<string, string> };
}

/** What this module knows of one connection. */
interface ConnectionState {
  /** direct: the connection reaches PostgreSQL itself; a promise while auto mode asks. */
  direct: boolean | Promise<boolean> | undefined;
  /** generation is the schema generation its prepared statements were made in; -1: deallocate before the next. */
  generation: number;
  deallocating: Promise<unknown> | undefined;
}

/**
 * isMismatch tells an error after which pg's list of a connection's prepared
 * statements and the server's disagree: a stale plan (a schema change altered
 * the columns of a prepared statement's result, e.g. ADD COLUMN under
 * `select "users".*`), 26000 (no such statement: someone ran DEALLOCATE or
 * DISCARD ALL) or 42P05 (already exists).
 */
function isMismatch(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "26000" || code === "42P05" || isStalePlan(error);
}

/**
 * PreparedStatements runs db's statements that have parameters as named
 * prepared statements, so PostgreSQL parses and plans each text once per
 * connection rather than on every execution. pg prepares a name once per
 * connection and binds it afterwards; a new connection (after a failover,
 * or one the pool replaced) starts with none and prepares again.
 *
 * When a prepared statement fails because the schema changed under it, the
 * connection's statements are deallocated and, outside a transaction, the
 * statement runs once more (prepared afresh); in a transaction, which that
 * error has aborted, the error stands (the caller may retry the call) and the
 * connection deallocates before its next statement. Either way the other
 * connections of the pool deallocate before their next named statement, so
 * one schema change costs each connection one `DEALLOCATE ALL`, not a failure.
 */
class PreparedStatements {
  private readonly names: StatementNames;
  private readonly connections = new WeakMap<object, ConnectionState>();
  private generation = 0;

  private toldPooled = false;

  constructor(
    private readonly mode: "auto" | "on",
    maxNames: number,
    private readonly log: Logger | undefined,
  ) {
    this.names = new StatementNames(maxNames);
  }

  async run(query: DriverQuery, connection: PgClient, statement: DriverStatement): Promise<unknown> {
    if (statement.bindings === undefined || statement.bindings.length === 0 || statement.options?.name !== undefined)
      return query(connection, statement);
    const state = this.stateOf(connection);
    if (state.direct !== true && !(await this.isDirect(connection, state))) return query(connection, statement);
    const name = this.names.nameOf(statement.sql);
    if (name === undefined) return query(connection, statement);
    const named = { ...statement, options: { ...statement.options, name } };
    if (state.generation !== this.generation) await this.deallocate(connection, state);
    try {
      return await query(connection, named);
    } catch (error) {
      if (!isMismatch(error)) throw error;
      if (isStalePlan(error)) this.generation++;
      state.generation = -1;
      // After the error, idle ("I") means the statement ran alone and
      // PostgreSQL rolled it back, so it can run again; "E" means it aborted
      // the transaction it ran in, which the caller must retry.
      if (connection.getTransactionStatus() !== "I") throw error;
      await this.deallocate(connection, state);
      return query(connection, named);
    }
  }

  private stateOf(connection: PgClient): ConnectionState {
    let state = this.connections.get(connection);
    if (state === undefined) {
      state = { direct: this.mode === "on" || undefined, generation: this.generation, deallocating: undefined };
      this.connections.set(connection, state);
    }
    return state;
  }

  /**
   * isDirect asks once per connection (auto mode) whether it reaches
   * PostgreSQL itself; a question that fails (asked in an aborted
   * transaction) counts as no and is asked again next time.
   */
  private async isDirect(connection: PgClient, state: ConnectionState): Promise<boolean> {
    state.direct ??= throughPooler(connection).then(
      (pooled) => {
        if (pooled && !this.toldPooled) {
          this.toldPooled = true;
          this.log?.info(
            "statements are not prepared: the database connection goes through a connection pooler (DATABASE_PREPARED_STATEMENTS=auto)",
          );
        }
        return (state.direct = !pooled);
      },
      () => {
        state.direct = undefined;
        return false;
      },
    );
    return state.direct;
  }

  /** deallocate drops every prepared statement of the connection, on the server and in pg's list. */
  private async deallocate(connection: PgClient, state: ConnectionState): Promise<void> {
    state.deallocating ??= connection.query("DEALLOCATE ALL").finally(() => (state.deallocating = undefined));
    const generation = this.generation;
    await state.deallocating;
    connection.connection.parsedStatements = {};
    state.generation = generation;
  }
}

/** PreparedStatementsOptions are how and how many statements db prepares. */
export interface PreparedStatementsOptions {
  mode: PreparedStatementsMode;
  /** maxNames bounds the distinct statement texts prepared; default defaultMaxNames. */
  maxNames?: number;
  /** log hears, once, that auto mode found a pooler. */
  log?: Logger;
}

/** prepareStatements makes db run its statements with parameters as named prepared statements, unless mode is off. */
export function prepareStatements(db: Knex, options: PreparedStatementsOptions): void {
  if (options.mode === "off") return;
  const prepared = new PreparedStatements(options.mode, options.maxNames ?? defaultMaxNames, options.log);
  wrapDriverQuery(db, (query) => (connection, statement) => prepared.run(query, connection as PgClient, statement));
}
