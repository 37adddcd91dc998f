import type { Knex } from "knex";
import pg from "pg";
import { parseLsn } from "../protocol/lsn.js";
import { isRecoveryConflict, isUnavailable } from "./errors.js";
import { connectionSettingsOf } from "./knex-internals.js";
import { createDatabase } from "./knex.js";
import type { DatabaseOptions } from "./knex.js";

/** ReplicaSetOptions are the standbys to read from and how to judge their failures. */
export interface ReplicaSetOptions extends Omit<DatabaseOptions, "url"> {
  urls: readonly string[];
  /** lsnCacheMs is how long a replica's known replay position is trusted without asking again; default 1000. */
  lsnCacheMs?: number;
  /** retryAfterMs is how long an unreachable replica is left alone before it is probed again; default 5000. */
  retryAfterMs?: number;
  /** probeTimeoutMs bounds connecting for, and answering, the replay-position probe; default 1000. */
  probeTimeoutMs?: number;
}

/** Replica is one standby a read may go to. */
export interface Replica {
  /** name is host:port/database, for logs (never the password). */
  readonly name: string;
  readonly db: Knex;
}

interface State extends Replica {
  /** replayed is the last replay position seen (it only grows on a standby); undefined: not known, or not a standby. */
  replayed: bigint | undefined;
  checkedAt: number;
  down: boolean;
  retryAt: number;
  checking: Promise<void> | undefined;
  probe: pg.Client | undefined;
  warnedNotStandby: boolean;
}

function nameOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || "5432"}${u.pathname}`;
}

/**
 * ReplicaSet holds the PostgreSQL standbys (DATABASE_REPLICA_URLS), a Knex
 * instance each, and decides which of them may serve a read: round-robin
 * over the reachable ones, and for a read that must see a write, only one
 * that has replayed past the write's WAL position. Replay positions are
 * asked with `pg_last_wal_replay_lsn()` on a connection of the set's own
 * (not the pool), remembered for a short time, and asked again only when a
 * read needs a newer one. A replica that cannot be reached is left out
 * until a probe finds it answering again.
 */
export class ReplicaSet {
  private turn = 0;

  private constructor(
    private readonly replicas: State[],
    private readonly options: ReplicaSetOptions,
  ) {}

  /** open makes a pool per replica; nothing connects until the first read. */
  static open(options: ReplicaSetOptions): ReplicaSet {
    const replicas = options.urls.map((url): State => ({
      name: nameOf(url),
      db: createDatabase({ ...options, url }),
      replayed: undefined,
      checkedAt: 0,
      down: false,
      retryAt: 0,
      checking: undefined,
      probe: undefined,
      warnedNotStandby: false,
    }));
    return new ReplicaSet(replicas, options);
  }

  /** databases are the replicas' Knex instances (for statement observers). */
  get databases(): Knex[] {
    return this.replicas.map((r) => r.db);
  }

  /**
   * pick chooses the replica for one read, or undefined for the primary:
   * any reachable replica when minLsn is undefined, else one known (or
   * found, with one probe) to have replayed at least to minLsn.
   */
  async pick(minLsn: bigint | undefined): Promise<Replica | undefined> {
    const now = Date.now();
    const start = this.turn++ % this.replicas.length;
    const order = [...this.replicas.slice(start), ...this.replicas.slice(0, start)];
    for (const r of order) if (r.down && now >= r.retryAt) void this.refresh(r);
    const up = order.filter((r) => !r.down);
    const candidate = up[0];
    if (candidate === undefined || minLsn === undefined) return candidate;
    const caughtUp = (r: State) => r.replayed !== undefined && r.replayed >= minLsn;
    const known = up.find((r) => caughtUp(r) && now - r.checkedAt < (this.options.lsnCacheMs ?? 1000));
    if (known !== undefined) return known;
    await this.refresh(candidate);
    return !candidate.down && caughtUp(candidate) ? candidate : undefined;
  }

  /**
   * failed hears that a read on replica threw, and says whether the read
   * should run again on the primary: when the replica is unreachable (it is
   * then left out and probed again later) or cancelled the read for a
   * replay conflict.
   */
  failed(replica: Replica, error: unknown): boolean {
    const state = this.replicas.find((r) => r === replica);
    if (state === undefined) return false;
    if (isUnavailable(error)) {
      this.markDown(state, error);
      return true;
    }
    return isRecoveryConflict(error);
  }

  /** close ends the probes and the replicas' pools. */
  async close(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (r) => {
        await r.checking;
        const probe = r.probe;
        r.probe = undefined;
        await probe?.end().catch(() => {});
        await r.db.destroy();
      }),
    );
  }

  private markDown(r: State, error: unknown): void {
    r.retryAt = Date.now() + (this.options.retryAfterMs ?? 5000);
    if (r.down) return;
    r.down = true;
    this.options.log?.warn({ replica: r.name, err: error }, "read replica unreachable: reading from the primary");
  }

  /** refresh asks the replica for its replay position (one probe at a time per replica). */
  private refresh(r: State): Promise<void> {
    r.checking ??= this.probe(r).finally(() => {
      r.checking = undefined;
    });
    return r.checking;
  }

  private async probe(r: State): Promise<void> {
    const timeout = this.options.probeTimeoutMs ?? 1000;
    try {
      if (r.probe === undefined) {
        const settings = connectionSettingsOf(r.db);
        const client = new pg.Client({
          ...settings,
          application_name: "blog-service replica probe",
          connectionTimeoutMillis: timeout,
          query_timeout: timeout,
        });
        client.on("error", () => {
          if (r.probe === client) r.probe = undefined;
        });
        r.probe = client;
        await client.connect();
      }
      const { rows } = await r.probe.query<{ lsn: string | null }>("SELECT pg_last_wal_replay_lsn()::text AS lsn");
      const lsn = parseLsn(rows[0]?.lsn);
      if (lsn === undefined && !r.warnedNotStandby) {
        r.warnedNotStandby = true;
        this.options.log?.warn(
          { replica: r.name },
          "read replica is not a standby: reads that must see a write skip it",
        );
      }
      r.replayed = lsn;
      r.checkedAt = Date.now();
      if (r.down) this.options.log?.info({ replica: r.name }, "read replica answers again");
      r.down = false;
    } catch (error) {
      const probe = r.probe;
      r.probe = undefined;
      void probe?.end().catch(() => {});
      this.markDown(r, error);
    }
  }
}
