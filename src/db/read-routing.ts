import type { Knex } from "knex";
import { currentCall } from "../call/scope.js";
import type { ReplicaSet } from "./replicas.js";

/**
 * Reader runs the repositories' reads that may tolerate replication lag.
 * Only calls whose method has no side effects (GetUser, ListPosts, ...) may
 * read from a replica; every other call, transaction and code outside calls
 * (CLI, migrations, tests) reads from the primary.
 */
export interface Reader {
  /** read runs work on the database chosen for this call; a replica that fails to connect hands it to the primary. */
  read<T>(work: (db: Knex) => Promise<T>): Promise<T>;
}

/** primaryReader reads everything from db: the reader when no replicas are configured. */
export function primaryReader(db: Knex): Reader {
  return { read: (work) => work(db) };
}

/** replicaReader sends the reads of read-only calls to replicas, as their call allows (read-only methods; minLsn for read-your-writes). */
export function replicaReader(primary: Knex, replicas: ReplicaSet): Reader {
  const pick = () => {
    const call = currentCall();
    return call?.readOnly === true ? replicas.pick(call.minLsn) : Promise.resolve(undefined);
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
  return { read };
}

/** walPosition is the primary's current WAL write position: past the commit of every write already answered. */
export async function walPosition(primary: Knex): Promise<string> {
  const { rows } = await primary.raw<{ rows: { lsn: string }[] }>("SELECT pg_current_wal_lsn()::text AS lsn");
  return rows[0]!.lsn;
}
