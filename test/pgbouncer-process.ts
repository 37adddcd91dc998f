import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { until } from "./poll.js";
import { freePort, ownedTempDir, runAs } from "./postgres-cluster.js";

/** pgbouncerBin is Debian's pgbouncer (package `pgbouncer`), if installed. */
export const pgbouncerBin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((p) => existsSync(p));

/** PgBouncer is a running PgBouncer in transaction mode in front of one PostgreSQL server. */
export interface PgBouncer {
  port: number;
  /** url is `server`'s URL with PgBouncer's host and port. */
  url(server: string): string;
  /** connections counts, from the admin console, the client and server connections PgBouncer holds for a database. */
  connections(database: string): Promise<{ clients: number; servers: number }>;
  stop(): Promise<void>;
}

/**
 * startPgBouncer runs PgBouncer (pool_mode transaction, few server
 * connections so that clients share them, trust auth) on a free loopback
 * port, forwarding every database to the server of `serverUrl`. PgBouncer
 * refuses to run as root, so as root it runs as the `postgres` OS user.
 */
export async function startPgBouncer(serverUrl: string, poolSize = 2): Promise<PgBouncer> {
  if (pgbouncerBin === undefined) throw new Error("pgbouncer is not installed");
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || "postgres");
  const as = runAs();
  const dir = ownedTempDir("blog-pgbouncer-", as);
  const port = await freePort();
  const config = path.join(dir, "pgbouncer.ini");
  await writeFile(path.join(dir, "users.txt"), `"${user}" ""\n`);
  await writeFile(
    config,
    `[databases]
* = host=${server.hostname} port=${server.port || 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${path.join(dir, "users.txt")}
admin_users = ${user}
pool_mode = transaction
default_pool_size = ${poolSize}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
`,
  );
  const child: ChildProcess = spawn(pgbouncerBin, [config], { ...as, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = (target: string) => {
    const u = new URL(target);
    u.hostname = "127.0.0.1";
    u.port = String(port);
    return u.toString();
  };
  const admin = async <R extends pg.QueryResultRow>(sql: string) => {
    const client = new pg.Client({ connectionString: url(serverUrl).replace(/\/[^/]*$/, "/pgbouncer") });
    await client.connect();
    try {
      // Without parameters pg uses the simple query protocol, the only one the admin console speaks.
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(
      "PgBouncer accepts connections",
      async () => {
        if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${output}`);
        return admin("SHOW VERSION").then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: 10_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    url,
    connections: async (database) => {
      const count = async (what: string) =>
        (await admin<{ database: string }>(`SHOW ${what}`)).filter((r) => r.database === database).length;
      return { clients: await count("CLIENTS"), servers: await count("SERVERS") };
    },
    stop,
  };
}
