import type { Knex } from "knex";
import pg from "pg";
import { connectionSettingsOf } from "./knex-internals.js";

/** The channel sequence_commit() notifies once per committed transaction with changes. */
const channel = "blog_changes";

/**
 * ChangeNotifier wakes watchers when a transaction with changes commits:
 * LISTEN on one dedicated connection per process, outside the pool (LISTEN is
 * session state, so it needs a direct connection to PostgreSQL, never one
 * through PgBouncer in transaction mode: give listenUrl, the primary itself,
 * when the pool goes through a pooler). Notifications only wake; watchers
 * also poll every pollMs, so a lost notification (the listening connection
 * dropped, the database restarted) only delays a change, never loses it.
 */
export class ChangeNotifier {
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();
  /** counter goes up on every notification: a watcher compares it before and after a read. */
  counter = 0;

  constructor(
    private readonly db: Knex,
    private readonly pollMs: number,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly listenUrl?: string,
  ) {}

  /** start connects and listens; a failure is retried in the background (watchers poll meanwhile). */
  start(): void {
    this.closed = false;
    void this.connect();
  }

  private async connect(): Promise<void> {
    const settings =
      this.listenUrl === undefined ? connectionSettingsOf(this.db) : { connectionString: this.listenUrl };
    const client = new pg.Client({ ...settings, application_name: "blog-service change feed" });
    const lost = (error?: unknown) => {
      if (this.client !== client) return;
      this.client = undefined;
      if (error !== undefined) this.onError(error);
      void client.end().catch(() => {});
      this.wake(); // a read now catches up with whatever was missed
      if (!this.closed) this.retry = setTimeout(() => void this.connect(), this.pollMs).unref();
    };
    this.client = client;
    client.on("error", lost);
    client.on("end", () => lost());
    client.on("notification", () => this.wake());
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
      if (this.closed) await client.end();
      else this.wake(); // changes committed while not listening
    } catch (error) {
      lost(error);
    }
  }

  private wake(): void {
    this.counter++;
    for (const wake of this.waiters) wake();
  }

  /**
   * wait resolves at the first notification after `seen` (at once if one came
   * since), after timeoutMs, or when signal aborts.
   */
  wait(seen: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.counter !== seen || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(timeoutMs, this.pollMs));
      signal.addEventListener("abort", done);
      this.waiters.add(done);
    });
  }

  /** close stops listening and wakes every watcher. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    this.wake();
    await client?.end().catch(() => {});
  }
}
