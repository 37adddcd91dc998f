// Run: node --import tsx --test src/dev/embedded-postgres.test.ts
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startEmbeddedPostgres } from "./embedded-postgres.js";

const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Cleanups run in reverse registration order after the test, whether it passed or not. */
function deferrer(t: TestContext) {
  const stack: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const fn of stack.reverse())
      await fn().catch((err: unknown) => t.diagnostic(`cleanup failed: ${String(err)}`));
  });
  return (fn: () => Promise<unknown>) => void stack.push(fn);
}

/** A temp dir the postgres OS user can traverse (mkdtemp makes 0700 dirs). */
async function tmpDir(defer: ReturnType<typeof deferrer>, mode = 0o755): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ep-test-"));
  defer(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.chmod(dir, mode);
  return dir;
}

async function query(url: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Alive and not a zombie (PID 1 here may not reap orphans promptly). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("initialises, persists data and restarts on the same data dir without initdb", async (t) => {
  const defer = deferrer(t);
  const dataDir = path.join(await tmpDir(defer), "nested", "pg");

  const first = await startEmbeddedPostgres({ dataDir });
  defer(() => first.stop());
  assert.equal(first.dataDir, dataDir);
  assert.match(first.url, new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${first.port}/blog$`));
  const [row] = await query(first.url, "SELECT current_user, version(), current_database() AS db");
  assert.equal(row?.current_user, "postgres");
  assert.match(String(row?.version), /^PostgreSQL \d+/);
  assert.equal(row?.db, "blog");
  assert.equal((await query(first.url, "SELECT 1 FROM pg_database WHERE datname = $1", ["blog"])).length, 1);
  await query(first.url, "CREATE TABLE notes (body text NOT NULL)");
  await query(first.url, "INSERT INTO notes VALUES ($1)", ["survives restarts"]);
  const versionFile = await fs.stat(path.join(dataDir, "PG_VERSION"));
  const password = await fs.readFile(`${dataDir}.password`, "utf8");
  await first.stop();
  await first.stop(); // idempotent
  assert.ok(!existsSync(path.join(dataDir, "postmaster.pid")), "clean shutdown removes postmaster.pid");

  const second = await startEmbeddedPostgres({ dataDir });
  defer(() => second.stop());
  // No second initdb: PG_VERSION and the password are the ones from the first run.
  const again = await fs.stat(path.join(dataDir, "PG_VERSION"));
  assert.deepEqual([again.ino, again.mtimeMs], [versionFile.ino, versionFile.mtimeMs]);
  assert.equal(await fs.readFile(`${dataDir}.password`, "utf8"), password);
  assert.deepEqual(await query(second.url, "SELECT body FROM notes"), [{ body: "survives restarts" }]);
  await second.stop();
});

test("recovers from a SIGKILLed parent that orphaned its postgres", async (t) => {
  const defer = deferrer(t);
  const dataDir = path.join(await tmpDir(defer), "pg");
  let orphanPid = 0;
  defer(async () => {
    // only matters if the test failed before the orphan was dealt with
    if (orphanPid && alive(orphanPid)) {
      process.kill(orphanPid, "SIGINT");
      await until(() => !alive(orphanPid), 15_000);
    }
  });

  const moduleUrl = new URL("./embedded-postgres.ts", import.meta.url).href;
  const fixture = `import(${JSON.stringify(moduleUrl)}).then(async ({ startEmbeddedPostgres }) => {
    const db = await startEmbeddedPostgres({ dataDir: process.env.EP_DATA_DIR });
    console.log(JSON.stringify({ url: db.url }));
  });`;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", fixture], {
    cwd: projectRoot,
    env: { ...process.env, EP_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const childExit = new Promise<void>((resolve) => child.once("close", () => resolve()));
  defer(async () => {
    child.kill("SIGKILL");
    await childExit;
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });

  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        /* not our line */
      }
    });
    void childExit.then(() => reject(new Error(`fixture exited before printing the url:\n${stderr}`)));
  });
  orphanPid = Number((await fs.readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
  await query(url, "CREATE TABLE notes (body text NOT NULL)");
  await query(url, "INSERT INTO notes VALUES ($1)", ["written before kill -9"]);

  child.kill("SIGKILL");
  await childExit;
  assert.ok(alive(orphanPid), "postgres outlives its SIGKILLed parent");

  const db = await startEmbeddedPostgres({ dataDir });
  defer(() => db.stop());
  assert.ok(!alive(orphanPid), "the orphaned postmaster was stopped");
  assert.deepEqual(await query(db.url, "SELECT body FROM notes"), [{ body: "written before kill -9" }]);
  await db.stop();
});

test(
  "falls back to a tmp data dir the postgres user can reach (preferred one under a 0700 dir)",
  { skip: process.getuid?.() !== 0 ? "only meaningful as root" : false },
  async (t) => {
    const defer = deferrer(t);
    const preferred = path.join(await tmpDir(defer, 0o700), "data");
    const hash = createHash("sha256").update(preferred).digest("hex").slice(0, 12);
    const fallback = path.join(os.tmpdir(), `blog-service-${hash}`, "postgres");
    defer(() => fs.rm(path.dirname(fallback), { recursive: true, force: true }));
    const notices: string[] = [];

    const db = await startEmbeddedPostgres({ dataDir: preferred, log: (line) => notices.push(line) });
    defer(() => db.stop());
    assert.equal(db.dataDir, fallback);
    assert.ok(!existsSync(preferred), "the unreachable preferred dir is left alone");
    assert.ok(
      notices.some((line) => line.includes(fallback)),
      "the fallback is logged",
    );
    assert.deepEqual(await query(db.url, "SELECT 40 + 2 AS answer"), [{ answer: 42 }]);
    await db.stop();
  },
);

test("fails fast with postgres output when the port is held by a silent listener", async (t) => {
  const defer = deferrer(t);
  const dataDir = path.join(await tmpDir(defer), "pg");
  const sockets = new Set<net.Socket>();
  const squatter = net.createServer((socket) => {
    sockets.add(socket);
  }); // accepts, never answers
  await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
  defer(
    () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        squatter.close(resolve);
      }),
  );
  const { port } = squatter.address() as net.AddressInfo;

  await assert.rejects(startEmbeddedPostgres({ dataDir, port }), /exited during startup[\s\S]*could not bind/);
  assert.ok(!existsSync(path.join(dataDir, "postmaster.pid")), "no postgres left running");
  // The cluster initialised by the failed attempt is fine for the next start.
  const db = await startEmbeddedPostgres({ dataDir });
  defer(() => db.stop());
  assert.equal((await query(db.url, "SELECT 1 AS one"))[0]?.one, 1);
  await db.stop();
});
