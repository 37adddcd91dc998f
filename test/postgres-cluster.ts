import { execFile, execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { appendFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";

// Throw-away PostgreSQL servers for tests that need more than one (a primary
// and a hot standby): the machine's PostgreSQL binaries, run as the
// `postgres` OS user when the tests run as root (PostgreSQL refuses root), on
// spare loopback ports, with data in a temporary directory that is removed
// on stop, and also when the test process exits without stopping them.

/** postgresBin is the newest /usr/lib/postgresql/<version>/bin with the tools a standby needs, if any. */
export function postgresBin(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  return versions
    .map((v) => path.join(base, v, "bin"))
    .find((bin) => ["initdb", "pg_ctl", "pg_basebackup", "postgres"].every((t) => existsSync(path.join(bin, t))));
}

/** RunAs is the OS user PostgreSQL's tools run as: `postgres` when we are root, else ourselves. */
export interface RunAs {
  uid?: number;
  gid?: number;
}

/** runAs looks up the `postgres` user when running as root. */
export function runAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** run runs a tool as `as`, failing with its output. */
export function run(file: string, args: string[], as: RunAs, cwd = os.tmpdir()): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { ...as, cwd, timeout: 60_000 }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${path.basename(file)} ${args.join(" ")}: ${error.message}\n${stdout}${stderr}`))
        : resolve(stdout),
    ),
  );
}

/** freePort finds a loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** ownedTempDir makes a temporary directory the tools' user owns (and may enter). */
export function ownedTempDir(prefix: string, as: RunAs): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (as.uid !== undefined && as.gid !== undefined) chownSync(dir, as.uid, as.gid);
  chmodSync(dir, 0o755);
  return dir;
}

/** Cluster is one running PostgreSQL server. */
export interface Cluster {
  readonly port: number;
  readonly dataDir: string;
  /** url is a connection URL for database (default postgres) as the postgres role, over TCP. */
  url(database?: string): string;
  /** query runs one statement on a fresh connection. */
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** stop shuts the server down (fast: connections are closed); start brings it back. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

const running = new Set<string>();

// A test process that dies without its after hooks must not leave servers
// behind: stop them immediately (SIGQUIT to the postmaster).
process.once("exit", () => {
  for (const dataDir of running) {
    try {
      const pid = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGQUIT");
    } catch {
      // Not running.
    }
  }
});

/** onLoopback is how a test reaches a server on a loopback port as the postgres role. */
export function onLoopback(port: number): Pick<Cluster, "url" | "query"> {
  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database?: string) {
      const client = new pg.Client({ connectionString: url(database) });
      await client.connect();
      try {
        return (await client.query<R>(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
  };
}

async function cluster(bin: string, as: RunAs, dataDir: string, port: number): Promise<Cluster> {
  const pgCtl = (...args: string[]) => run(path.join(bin, "pg_ctl"), ["-D", dataDir, ...args], as);
  const self: Cluster = {
    port,
    dataDir,
    ...onLoopback(port),
    async stop() {
      await pgCtl("stop", "-m", "fast", "-w", "-t", "30");
      running.delete(dataDir);
    },
    async start() {
      running.add(dataDir);
      await pgCtl("start", "-w", "-t", "30", "-l", path.join(dataDir, "server.log"));
    },
  };
  await self.start();
  return self;
}

const settings = (dataDir: string, port: number) => `
port = ${port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${dataDir}'
max_connections = 40
shared_buffers = 16MB
fsync = off
`;

/** startPrimary initdb's and starts a server ready to stream WAL to standbys (trust auth on loopback). */
export async function startPrimary(bin: string, as: RunAs, root: string): Promise<Cluster> {
  const dataDir = path.join(root, "primary");
  const port = await freePort();
  // initdb's pg_hba.conf with trust includes `host replication all 127.0.0.1/32 trust`.
  await run(path.join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], as);
  await appendFile(
    path.join(dataDir, "postgresql.conf"),
    `${settings(dataDir, port)}wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n`,
  );
  return cluster(bin, as, dataDir, port);
}

/** startStandby clones primary with pg_basebackup -R (streaming replication) and starts it as a hot standby. */
export async function startStandby(bin: string, as: RunAs, root: string, primary: Cluster): Promise<Cluster> {
  const dataDir = path.join(root, "standby");
  const port = await freePort();
  await run(
    path.join(bin, "pg_basebackup"),
    [
      "-h",
      "127.0.0.1",
      "-p",
      String(primary.port),
      "-U",
      "postgres",
      "-D",
      dataDir,
      "-R",
      "-X",
      "stream",
      "-c",
      "fast",
      "--no-sync",
    ],
    as,
  );
  // postgresql.auto.conf (where -R wrote primary_conninfo) wins over the primary's copied settings.
  await appendFile(path.join(dataDir, "postgresql.auto.conf"), settings(dataDir, port));
  return cluster(bin, as, dataDir, port);
}

/** removeClusters stops what still runs under root (immediately) and deletes it. */
export async function removeClusters(bin: string, as: RunAs, root: string, clusters: (Cluster | undefined)[]) {
  for (const c of clusters) {
    if (c === undefined || !running.has(c.dataDir)) continue;
    await run(path.join(bin, "pg_ctl"), ["-D", c.dataDir, "stop", "-m", "immediate", "-w"], as).catch(() => {});
    running.delete(c.dataDir);
  }
  rmSync(root, { recursive: true, force: true });
}
