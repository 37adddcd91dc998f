import type { Knex } from "knex";
import type pg from "pg";
import type { CancelTarget } from "./cancel-request.js";

// Knex has no public API for the few things below; this file is the only one
// that reaches into a Knex instance, so a Knex upgrade is checked here.

/** The tarn pool behind Knex, as the pool gauges read it. */
export interface PoolState {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  max: number;
}

/** poolOf is db's connection pool; undefined once the instance is destroyed. */
export function poolOf(db: Knex): PoolState | undefined {
  return (db.client as { pool?: PoolState }).pool;
}

/**
 * connectionSettingsOf is what db's pool connects with, for connections that
 * must live outside the pool (health probes, the migration lock, replay
 * position probes).
 */
export function connectionSettingsOf(db: Knex): pg.ClientConfig {
  return (db.client as { connectionSettings: pg.ClientConfig }).connectionSettings;
}

/**
 * queryIdOf is the id Knex gives one statement in its `query`,
 * `query-response` and `query-error` events, which pairs a statement's end
 * with its start.
 */
export function queryIdOf(event: unknown): string {
  return (event as { __knexQueryUid: string }).__knexQueryUid;
}

/** A pg connection as Knex's client hands it to a statement: where it connected and its cancel key. */
export type RawConnection = CancelTarget;

/** One statement as Knex hands it to the pg driver: `$n` placeholders, and options pg takes as they are (`name`, ...). */
export interface DriverStatement {
  sql: string;
  bindings?: readonly unknown[];
  options?: Record<string, unknown>;
}

/** Knex's last step of every statement, where the pg dialect builds pg's query config and runs it. */
export type DriverQuery = (connection: RawConnection, statement: DriverStatement) => Promise<unknown>;

type Method = (this: unknown, ...args: never[]) => unknown;

/** The prototype of each Knex client that has one of its own (see ownPrototype). */
const ownPrototypes = new WeakMap<object, Record<string, Method>>();

/**
 * ownPrototype puts a prototype of db's own between its Knex client and the
 * dialect's class. Knex builds the client of each transaction from
 * `client.constructor.prototype`, not from the client, so a method replaced
 * on the client itself never runs for statements in transactions; one
 * replaced on this prototype does.
 */
function ownPrototype(db: Knex): Record<string, Method> {
  const client = db.client as object;
  let own = ownPrototypes.get(client);
  if (own === undefined) {
    const Dialect = client.constructor as new () => object;
    own = class extends Dialect {}.prototype as unknown as Record<string, Method>;
    Object.setPrototypeOf(client, own);
    ownPrototypes.set(client, own);
  }
  return own;
}

/**
 * wrapDriverQuery replaces db's driver step of every statement with
 * wrap(original), for statements in transactions too. It runs after Knex's
 * `query` event and inside the query entry point, so observers, deadlines
 * and the failover check see one statement whatever wrap does on the
 * connection.
 */
export function wrapDriverQuery(db: Knex, wrap: (original: DriverQuery) => DriverQuery): void {
  const own = ownPrototype(db);
  const previous = own._query as unknown as (this: unknown, ...args: Parameters<DriverQuery>) => Promise<unknown>;
  own._query = function (this: unknown, connection: RawConnection, statement: DriverStatement) {
    return wrap((c, s) => previous.call(this, c, s))(connection, statement);
  } as Method;
}

/**
 * discardConnection marks a pooled connection as broken the way Knex's pg
 * client does when the socket fails, so the pool destroys it instead of
 * handing it out again (Knex checks the mark when a connection is acquired).
 */
export function discardConnection(connection: RawConnection, reason: unknown): void {
  (connection as RawConnection & { __knex__disposed?: unknown }).__knex__disposed = reason;
}

/** onAcquireError has listener hear every failure to get a connection from db's pool (connect refused, ...). */
export function onAcquireError(db: Knex, listener: (error: unknown) => void): void {
  const client = db.client as { acquireConnection(): Promise<unknown> };
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = () =>
    acquire().catch((error: unknown) => {
      listener(error);
      throw error;
    });
}
