import type { Knex } from "knex";
import pg from "pg";
import { connectionSettingsFor } from "./knex.js";

/** The channel sequence_commit() notifies once per committed transaction with changes. */
const channel = "blog_changes";

/**
 * ChangeNotifier wakes watchers when a transaction with changes commits:
 * LISTEN on one dedicated connection per process, outside the pool (LISTEN is
 * session state, so it needs a direct connection to PostgreSQL, never one
 * through PgBouncer in transaction mode: give listenUrl, the primary itself,
 * when the pool goes through a pooler). Notifications only wake; watchers
 * also poll every pollMs, so a lost notification (the listening connection
 * dropped, the database restarted) only delays a change, never loses it. The
 * poll is one timer per process that wakes every watcher at once, so watchers
 * at the same position can share one read (grpc/watch.ts).
 */
export class ChangeNotifier {
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
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
    this.poll = setInterval(() => this.wake(), this.pollMs).unref();
    void this.connect();
  }

  private async connect(): Promise<void> {
    // With a multi-host DATABASE_URL, LISTEN follows the primary (NOTIFY is sent there).
    let settings: pg.ClientConfig;
    try {
      settings =
        this.listenUrl === undefined ? await connectionSettingsFor(this.db) : { connectionString: this.listenUrl };
    } catch (error) {
      this.onError(error);
      this.wake();
      if (!this.closed) this.retry = setTimeout(() => void this.connect(), this.pollMs).unref();
      return;
    }
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
   * wait resolves at the first wake-up (a notification or the poll) after
   * `seen` (at once if one came since) with true, or with false after
   * timeoutMs (at most pollMs when not started: then each watcher polls on
   * its own) or when signal aborts.
   */
  wait(seen: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.counter !== seen) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", aborted);
        this.waiters.delete(wake);
        resolve(woken);
      };
      const wake = () => done(true);
      const aborted = () => done(false);
      // Started, the poll timer wakes every watcher; else each polls on its own.
      const timer = setTimeout(aborted, this.poll === undefined ? Math.min(timeoutMs, this.pollMs) : timeoutMs);
      signal.addEventListener("abort", aborted);
      this.waiters.add(wake);
    });
  }

  /** close stops listening and wakes every watcher. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.poll);
    this.poll = undefined;
    const client = this.client;
    this.client = undefined;
    this.wake();
    await client?.end().catch(() => {});
  }
}
