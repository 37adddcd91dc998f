import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { until } from "./poll.js";
import { freePort, onLoopback, ownedTempDir, runAs } from "./postgres-cluster.js";
import type { RunAs } from "./postgres-cluster.js";

// A pg_auto_failover formation of Debian's packages (postgresql-15-auto-failover,
// pg-auto-failover-cli) on loopback: a monitor and two data nodes with
// synchronous replication, each `pg_autoctl run` a child of the test, run as
// the `postgres` OS user, with data and pg_autoctl's own files in one
// temporary directory.

/** autoctlBin is pg_autoctl, if installed. */
export const autoctlBin = ["/usr/bin/pg_autoctl"].find((p) => existsSync(p));

/** autoFailoverPgBin is the bin/ of the PostgreSQL version the pgautofailover extension is built for. */
export function autoFailoverPgBin(): string | undefined {
  const share = "/usr/share/postgresql";
  if (!existsSync(share)) return undefined;
  const version = readdirSync(share)
    .sort((a, b) => Number(b) - Number(a))
    .find((v) => existsSync(path.join(share, v, "extension", "pgautofailover.control")));
  const bin = version && path.join("/usr/lib/postgresql", version, "bin");
  return bin !== undefined && existsSync(path.join(bin, "pg_ctl")) ? bin : undefined;
}

/**
 * Timings of the monitor (its `pgautofailover.*` settings), shortened so that
 * a failover takes seconds rather than the half minute of the defaults
 * (health checks every 5 s, a node unhealthy after 20 s, a lost primary
 * presumed demoted after 30 s). Production keeps the defaults; see
 * docs/scaling.md. FAILOVER_MONITOR_DEFAULTS=1 keeps them here too, to
 * measure what they give.
 */
export const testTimings = {
  health_check_period: 1000,
  health_check_timeout: 1000,
  health_check_max_retries: 1,
  health_check_retry_delay: 500,
  node_considered_unhealthy_timeout: 2000,
  primary_demote_timeout: 5000,
};

/** NodeState is a data node as the monitor sees it. */
export interface NodeState {
  name: string;
  port: number;
  reported: string;
  assigned: string;
}

/** DataNode is one data node: its PostgreSQL and the pg_autoctl that keeps it. */
export interface DataNode {
  readonly name: string;
  readonly port: number;
  /** url is a single-host URL of this node's database as the postgres role. */
  url(database?: string): string;
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** crash kills the node at once: pg_autoctl and every process of it, PostgreSQL included (kill -9). */
  crash(): Promise<void>;
  /** start runs `pg_autoctl run` again (after a crash: the node rejoins as a standby). */
  start(): void;
}

/** Formation is a running monitor and two data nodes. */
export interface Formation {
  readonly nodes: readonly [DataNode, DataNode];
  /** uri is `pg_autoctl show uri --formation default` for database, as the postgres role, without TLS. */
  uri(database: string): Promise<string>;
  /** states lists the data nodes as the monitor sees them. */
  states(): Promise<NodeState[]>;
  /** waitFor waits until the monitor reports (and assigns) the given state of each named node. */
  waitFor(states: Record<string, string>, timeoutMs?: number): Promise<void>;
  /** switchover runs `pg_autoctl perform switchover` (it returns once the new primary is in place). */
  switchover(): Promise<void>;
  /** log is what the pg_autoctl processes wrote, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

interface Keeper {
  child: ChildProcess;
  exited: Promise<void>;
}

const groups = new Set<number>();

// A test process that dies without its after hooks must not leave a formation
// behind: each pg_autoctl runs in a process group of its own, killed here.
process.once("exit", () => {
  for (const group of groups) {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
});

function monitorClient(port: number): pg.Client {
  return new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/pg_auto_failover` });
}

/**
 * startFormation creates the monitor and two nodes (node1 the primary, node2
 * a synchronous standby, cloned by pg_autoctl with pg_basebackup) and waits
 * until the monitor reports primary and secondary.
 */
export async function startFormation(bin: string): Promise<Formation> {
  if (autoctlBin === undefined) throw new Error("pg_autoctl is not installed");
  const autoctl = autoctlBin;
  const as: RunAs = runAs();
  const root = ownedTempDir("blog-failover-", as);
  const env = {
    HOME: root,
    PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    XDG_CONFIG_HOME: path.join(root, "config"),
    XDG_DATA_HOME: path.join(root, "share"),
    PG_CONFIG: path.join(bin, "pg_config"),
  };
  let output = "";
  const keepers = new Map<string, Keeper>();
  const ctl = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(autoctl, args, { ...as, env, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout!.on("data", (c: Buffer) => (text += c.toString()));
      child.stderr!.on("data", (c: Buffer) => (text += c.toString()));
      child.once("exit", (code) => {
        output += `$ pg_autoctl ${args.join(" ")}\n${text}`;
        if (code === 0) resolve(text);
        else reject(new Error(`pg_autoctl ${args.join(" ")} exited with ${code}:\n${text}`));
      });
    });
  const keep = (name: string, dataDir: string) => {
    // Its own process group, so that a crash can take pg_autoctl and all it started at once.
    const child = spawn(autoctl, ["run", "--pgdata", dataDir], {
      ...as,
      env,
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (c: Buffer) => (output += `[${name}] ${c}`));
    child.stderr!.on("data", (c: Buffer) => (output += `[${name}] ${c}`));
    groups.add(child.pid!);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    keepers.set(name, { child, exited });
  };
  const kill = async (name: string, dataDir: string) => {
    const keeper = keepers.get(name);
    keepers.delete(name);
    const postmaster = (() => {
      try {
        return Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      } catch {
        return 0;
      }
    })();
    if (keeper !== undefined) {
      // The whole group: pg_autoctl's supervisor, its node and postgres services, and children they left.
      try {
        process.kill(-keeper.child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
      groups.delete(keeper.child.pid!);
    }
    if (postmaster > 0) {
      try {
        process.kill(postmaster, "SIGKILL");
      } catch {
        // Gone with its process group.
      }
    }
    await keeper?.exited;
  };
  const monitorDir = path.join(root, "monitor");
  const monitorPort = await freePort();
  const withMonitor = async <T>(work: (c: pg.Client) => Promise<T>) => {
    const c = monitorClient(monitorPort);
    await c.connect();
    try {
      return await work(c);
    } finally {
      await c.end();
    }
  };
  const states = () =>
    withMonitor(async (c) => {
      const { rows } = await c.query<NodeState>(
        "SELECT nodename AS name, nodeport AS port, reportedstate::text AS reported, goalstate::text AS assigned FROM pgautofailover.node ORDER BY nodeid",
      );
      return rows;
    });
  const waitFor = (wanted: Record<string, string>, timeoutMs = 60_000) =>
    until(
      `the monitor reports ${JSON.stringify(wanted)}`,
      async () => {
        const now = await states().catch(() => []);
        return Object.entries(wanted).every(([name, state]) =>
          now.some((n) => n.name === name && n.reported === state && n.assigned === state),
        );
      },
      { timeoutMs, everyMs: 200 },
    );
  const common = ["--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl", path.join(bin, "pg_ctl")];

  const nodes: DataNode[] = [];
  const stop = async () => {
    for (const node of [...nodes].reverse()) await node.crash();
    await kill("monitor", monitorDir);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await ctl(["create", "monitor", "--pgdata", monitorDir, "--pgport", String(monitorPort), ...common]);
    // The monitor's PostgreSQL listens on loopback only, like the nodes' (--listen).
    await ctl(["config", "set", "--pgdata", monitorDir, "postgresql.listen_addresses", "127.0.0.1"]);
    keep("monitor", monitorDir);
    await until("the monitor answers", () => withMonitor(async () => true).catch(() => false), { timeoutMs: 30_000 });
    await withMonitor(async (c) => {
      const timings = process.env.FAILOVER_MONITOR_DEFAULTS ? {} : testTimings;
      for (const [name, value] of Object.entries(timings)) {
        await c.query(`ALTER SYSTEM SET pgautofailover.${name} = ${value}`);
      }
      await c.query("SELECT pg_reload_conf()");
    });
    const monitorUri = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`;
    for (const name of ["node1", "node2"]) {
      const dataDir = path.join(root, name);
      const port = await freePort();
      await ctl([
        "create",
        "postgres",
        "--pgdata",
        dataDir,
        "--pgport",
        String(port),
        "--name",
        name,
        "--listen",
        "127.0.0.1",
        "--monitor",
        monitorUri,
        ...common,
      ]);
      keep(name, dataDir);
      nodes.push({
        name,
        port,
        ...onLoopback(port),
        crash: () => kill(name, dataDir),
        start: () => keep(name, dataDir),
      });
      await waitFor(name === "node1" ? { node1: "single" } : { node1: "primary", node2: "secondary" });
    }
  } catch (error) {
    await stop();
    throw Object.assign(error as Error, { message: `${(error as Error).message}\n${output}` });
  }
  return {
    nodes: nodes as [DataNode, DataNode],
    async uri(database) {
      const printed = (await ctl(["show", "uri", "--pgdata", monitorDir, "--formation", "default"])).trim();
      const u = printed.replace(/^postgres(ql)?:\/\//, "postgres://postgres@");
      return u.replace(/\/postgres\?/, `/${database}?`).replace(/sslmode=\w+/, "sslmode=disable");
    },
    states,
    waitFor,
    switchover: async () => {
      // The monitor's perform_failover() can deadlock with a keeper's node_active() on the
      // node table (pg_auto_failover issue #1004; the retry came in pull request #1171, after
      // Debian's package). PostgreSQL rolls the losing transaction back, so the monitor's
      // state is as before and the command can simply be run again; any other failure stands.
      for (let attempt = 1; ; attempt++) {
        try {
          await ctl(["perform", "switchover", "--pgdata", monitorDir, "--wait", "120"]);
          return;
        } catch (error) {
          if (attempt === 3 || !(error as Error).message.includes("deadlock detected")) throw error;
        }
      }
    },
    log: () => output,
    stop,
  };
}
