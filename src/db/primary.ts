import pg from "pg";
import type { Logger } from "../log.js";
import { hostName } from "./database-url.js";
import type { DatabaseHost, HostList } from "./database-url.js";
import { NoWritablePrimary } from "./errors.js";

/** PrimaryLocatorOptions bound the probes and name the connections they open. */
export interface PrimaryLocatorOptions {
  /** probeTimeoutMs bounds connecting to, and answering from, one host; default 2000. */
  probeTimeoutMs?: number;
  applicationName: string;
  log?: Logger;
}

/** readOnly is what libpq's target_session_attrs=read-write asks a server after connecting. */
export const readOnlyQuery = "SHOW transaction_read_only";

/** isReadOnly runs readOnlyQuery on a connected client. */
export async function isReadOnly(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query<{ transaction_read_only: string }>(readOnlyQuery);
  return rows[0]?.transaction_read_only !== "off";
}

/**
 * PrimaryLocator finds, among the hosts of a multi-host DATABASE_URL, the one
 * to write to, the way libpq does with target_session_attrs=read-write: it
 * connects to each host and asks `SHOW transaction_read_only` (a standby, and
 * a promoted standby that pg_auto_failover still holds read-only, say on).
 * It remembers the host it found until told that a connection to it failed
 * in a way that means failover (forget), then looks again on the next
 * connection. The pool, the health probe and the migration lock all connect
 * through it.
 */
export class PrimaryLocator {
  private current: DatabaseHost | undefined;
  private looking: Promise<DatabaseHost> | undefined;
  private lastFound: DatabaseHost | undefined;
  private warned = false;

  constructor(
    readonly target: HostList,
    private readonly options: PrimaryLocatorOptions,
  ) {}

  /** writable: only a host that takes writes will do (target_session_attrs=read-write). */
  get writable(): boolean {
    return this.target.writable;
  }

  /** primary is the host to connect to: the one known, or the first found to answer (and take writes). */
  primary(): Promise<DatabaseHost> {
    return this.current === undefined ? this.find() : Promise.resolve(this.current);
  }

  /** settings are pg's client settings for the primary (found first when not known). */
  async settings(): Promise<pg.ClientConfig> {
    return this.settingsFor(await this.primary());
  }

  settingsFor(host: DatabaseHost): { connectionString: string; application_name: string } {
    return { connectionString: this.target.urlFor(host), application_name: this.options.applicationName };
  }

  /** isCurrent is true while host is still the one known to be the primary. */
  isCurrent(host: DatabaseHost): boolean {
    return this.current === host;
  }

  /** holds is true for a connection (pg's client, which knows its host and port) to the known primary. */
  holds(connection: { host: string; port: number }): boolean {
    const c = this.current;
    return c !== undefined && c.host === connection.host && c.port === Number(connection.port);
  }

  /**
   * forget hears that a connection to `on` (default: the known primary)
   * failed or found it read-only: the primary is looked for again.
   */
  forget(on?: { host: string; port: number }): void {
    if (on === undefined || this.holds(on)) this.current = undefined;
  }

  private find(): Promise<DatabaseHost> {
    this.looking ??= this.look().finally(() => {
      this.looking = undefined;
    });
    return this.looking;
  }

  private async look(): Promise<DatabaseHost> {
    const { hosts } = this.target;
    const answers = await Promise.all(hosts.map((h) => this.probe(h)));
    const found = hosts.find((_, i) => answers[i] === "yes");
    const log = this.options.log;
    if (found === undefined) {
      const error = new NoWritablePrimary(hosts.map(hostName), answers.includes("read-only"));
      if (!this.warned) log?.warn({ err: error }, "no writable primary among DATABASE_URL's hosts");
      this.warned = true;
      throw error;
    }
    if (this.lastFound === undefined || hostName(this.lastFound) !== hostName(found)) {
      log?.info({ primary: hostName(found), previous: this.lastFound && hostName(this.lastFound) }, "primary found");
    }
    this.warned = false;
    this.lastFound = found;
    this.current = found;
    return found;
  }

  private async probe(host: DatabaseHost): Promise<"yes" | "read-only" | "down"> {
    const timeout = this.options.probeTimeoutMs ?? 2000;
    const client = new pg.Client({
      ...this.settingsFor(host),
      application_name: `${this.options.applicationName} primary probe`,
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
    });
    client.on("error", () => {});
    try {
      await client.connect();
      return !this.writable || !(await isReadOnly(client)) ? "yes" : "read-only";
    } catch {
      return "down";
    } finally {
      void client.end().catch(() => {});
    }
  }
}
