import { setTimeout as delay } from "node:timers/promises";
import type { Knex } from "knex";
import pg from "pg";
import { NoWritablePrimary, isUnavailable, classify } from "./errors.js";
import { poolOf } from "./knex-internals.js";
import { connectionSettingsFor, primaryLocatorOf } from "./knex.js";
import { isReadOnly } from "./primary.js";

/** DatabaseMonitorOptions says how often to probe and whom to tell. */
export interface DatabaseMonitorOptions {
  /** intervalMs is the time between the end of one probe and the start of the next. */
  intervalMs: number;
  /** timeoutMs bounds connecting and answering `SELECT 1`; slower counts as unreachable. */
  timeoutMs: number;
  /**
   * starvedAfterMs is how long callers may wait on a pool with no free
   * connection before the service counts as unable to serve; default: never.
   */
  starvedAfterMs?: number;
  /** onChange hears the first verdict and every change: serving, or why not. */
  onChange(verdict: DatabaseVerdict): void;
}

/**
 * DatabaseVerdict is whether calls can be served: the database answers (and,
 * with a multi-host DATABASE_URL asking for read-write, one host takes
 * writes: "read-only" when the hosts that answer do not) and the pool gives
 * connections.
 */
export type DatabaseVerdict = "serving" | "unreachable" | "read-only" | "pool-starved";

/** DatabaseMonitor is a running probe; start and stop it with the server. */
export interface DatabaseMonitor {
  /** start probes once (so onChange has spoken when it resolves), then keeps probing. */
  start(): Promise<void>;
  /** stop ends probing and closes the probe's connection; onChange is not called again. */
  stop(): Promise<void>;
}

/**
 * monitorDatabase watches whether PostgreSQL answers, so health can report
 * NOT_SERVING while it is away and SERVING again when it is back, without a
 * restart. It probes with `SELECT 1` on a connection of its own, outside the
 * pool, so a busy pool is not mistaken for a lost database; a statement that
 * fails in a suspicious way triggers a probe without waiting for the timer.
 * With starvedAfterMs, a pool that has had callers waiting and no free
 * connection for that long also counts as not serving (calls would get
 * UNAVAILABLE from the acquire timeout), so an orchestrator can act. With a
 * multi-host DATABASE_URL the probe follows the primary: it asks the host it
 * is on whether it still takes writes, and a failed or read-only answer
 * sends the pool looking for the primary again.
 */
export function monitorDatabase(db: Knex, options: DatabaseMonitorOptions): DatabaseMonitor {
  const locator = primaryLocatorOf(db);
  let client: pg.Client | undefined;
  let current: DatabaseVerdict | undefined;
  let starvedSince: number | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let probing: Promise<void> | undefined;

  const drop = async (c: pg.Client | undefined) => {
    if (c === undefined) return;
    if (client === c) client = undefined;
    await c.end().catch(() => {});
  };
  const connect = async () => {
    const settings = await connectionSettingsFor(db);
    const c = new pg.Client({
      ...settings,
      application_name: `${settings.application_name ?? "blog-service"} health probe`,
      connectionTimeoutMillis: options.timeoutMs,
      query_timeout: options.timeoutMs,
    });
    c.on("error", () => void drop(c));
    try {
      await c.connect();
    } catch (error) {
      void drop(c);
      throw error;
    }
    return c;
  };
  const verdict = (now: DatabaseVerdict) => {
    if (stopped || now === current) return;
    current = now;
    options.onChange(now);
  };
  /** starved: callers wait on a pool with no free connection, and have for starvedAfterMs. */
  const starved = () => {
    const pool = poolOf(db);
    const waiting = pool !== undefined && pool.numPendingAcquires() > 0 && pool.numUsed() >= pool.max;
    starvedSince = waiting ? (starvedSince ?? Date.now()) : undefined;
    const after = options.starvedAfterMs;
    return after !== undefined && starvedSince !== undefined && Date.now() - starvedSince >= after;
  };
  /** check asks the probe's server whether it serves: it answers, and takes writes when that is asked for. */
  const check = async (c: pg.Client) => {
    if (locator?.writable !== true) return void (await c.query("SELECT 1"));
    if (!(await isReadOnly(c))) return;
    locator.forget(c);
    throw new NoWritablePrimary([`${c.host}:${c.port}`], true);
  };
  const probe = async () => {
    try {
      // The pool has moved to another primary: so does the probe.
      if (client !== undefined && locator !== undefined && !locator.holds(client)) void drop(client);
      client ??= await connect();
      await check(client);
      verdict(starved() ? "pool-starved" : "serving");
    } catch (error) {
      locator?.forget(client);
      void drop(client);
      verdict(classify(error)?.failure === "read-only" ? "read-only" : "unreachable");
    }
  };
  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void probeNow(), options.intervalMs);
    timer.unref();
  };
  const probeNow = () =>
    (probing ??= probe().finally(() => {
      probing = undefined;
      schedule();
    }));
  const onQueryError = (error: unknown) => {
    if (isUnavailable(error)) void probeNow();
  };

  return {
    async start() {
      db.on("query-error", onQueryError);
      await probeNow();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      db.off("query-error", onQueryError);
      await probing;
      clearTimeout(timer);
      // Closing waits for the server's goodbye; an unreachable one must not hold shutdown up.
      await Promise.race([drop(client), delay(options.timeoutMs, undefined, { ref: false })]);
    },
  };
}
