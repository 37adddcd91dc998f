import { AsyncLocalStorage } from "node:async_hooks";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Knex } from "knex";
import type { CallContext, Middleware } from "../grpc/adapter.js";
import { runWithin } from "../grpc/run-within.js";
import { minLsnKey, minLsnOf } from "../grpc/min-lsn.js";
import type { Logger } from "../log.js";
import type { ReplicaSet } from "./replicas.js";

/** Route is what a read-only call allows: a replica, if it has replayed to minLsn (when set). */
interface Route {
  minLsn: bigint | undefined;
}

const routes = new AsyncLocalStorage<Route>();

/**
 * Reader runs the repositories' reads that may tolerate replication lag.
 * Only calls whose method has no side effects (GetUser, ListPosts, ...) may
 * read from a replica; every other call, transaction and code outside calls
 * (CLI, migrations, tests) reads from the primary.
 */
export interface Reader {
  /** read runs work on the database chosen for this call; a replica that fails to connect hands it to the primary. */
  read<T>(work: (db: Knex) => Promise<T>): Promise<T>;
  /** stream is read for cursors: it moves to the primary only if the replica fails before the first row. */
  stream<T>(work: (db: Knex) => AsyncIterable<T>): AsyncIterable<T>;
}

/** primaryReader reads everything from db: the reader when no replicas are configured. */
export function primaryReader(db: Knex): Reader {
  return { read: (work) => work(db), stream: (work) => work(db) };
}

/** replicaReader sends the reads of read-only calls to replicas, as routeReads allows. */
export function replicaReader(primary: Knex, replicas: ReplicaSet): Reader {
  const pick = () => {
    const route = routes.getStore();
    return route === undefined ? Promise.resolve(undefined) : replicas.pick(route.minLsn);
  };
  async function read<T>(work: (db: Knex) => Promise<T>): Promise<T> {
    const replica = await pick();
    if (replica === undefined) return work(primary);
    try {
      return await work(replica.db);
    } catch (error) {
      if (!replicas.failed(replica, error)) throw error;
      return work(primary);
    }
  }
  async function* stream<T>(work: (db: Knex) => AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    const replica = await pick();
    if (replica === undefined) return yield* work(primary);
    const rows = work(replica.db)[Symbol.asyncIterator]();
    let first: IteratorResult<T>;
    try {
      first = await rows.next();
    } catch (error) {
      if (!replicas.failed(replica, error)) throw error;
      return yield* work(primary);
    }
    try {
      for (let next = first; !next.done; next = await rows.next()) yield next.value;
    } finally {
      // Also when the consumer stops early: the cursor closes and its connection goes back.
      await rows.return?.();
    }
  }
  return { read, stream };
}

/** walPosition is the primary's current WAL write position: past the commit of every write already answered. */
async function walPosition(primary: Knex): Promise<string> {
  const { rows } = await primary.raw<{ rows: { lsn: string }[] }>("SELECT pg_current_wal_lsn()::text AS lsn");
  return rows[0]!.lsn;
}

/**
 * routeReads gives read-your-writes when replicas serve reads. A read-only
 * call (idempotency_level NO_SIDE_EFFECTS) may read from a replica, from one
 * that has replayed past the position in its `x-blog-min-lsn` metadata when
 * it sends one. Every other call is a write: its reads go to the primary, and
 * once it has succeeded (committed) it answers with the primary's WAL
 * position in the `x-blog-min-lsn` trailer, which the client sends back on
 * its later reads. The position costs one `SELECT pg_current_wal_lsn()` per
 * write; if that fails the write still succeeds, without the trailer.
 */
export function routeReads(primary: Knex, log: Logger): Middleware {
  return (next) => (request, context: CallContext) => {
    if (context.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
      const route = { minLsn: minLsnOf(context.metadata) };
      return runWithin(routes, route, () => next(request, context));
    }
    return Promise.resolve(next(request, context)).then(async (response) => {
      try {
        context.trailers.set(minLsnKey, await walPosition(primary));
      } catch (error) {
        log.warn({ err: error }, "could not read the WAL position after a write: no read-your-writes trailer");
      }
      return response;
    });
  };
}
