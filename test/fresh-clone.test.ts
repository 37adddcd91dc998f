import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, it } from "node:test";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { createClient } from "../src/client/transport.js";

// The README's run command from a fresh clone, with no DATABASE_URL: the
// embedded PostgreSQL is tested, not assumed. The clone sits in a mode-700
// directory (mkdtemp's default), where the postgres OS user cannot reach
// node_modules or .data when we run as root.
const root = path.resolve(import.meta.dirname, "..");
const run = promisify(execFile);
const work = await mkdtemp(path.join(os.tmpdir(), "blog-service-clone-"));
const clone = path.join(work, "blog-service");
const dataDirs = new Set<string>();
after(async () => {
  for (const dir of dataDirs) await rm(path.dirname(dir), { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Started {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  /** closed resolves when every process writing to the log pipe (npm, the service) has exited. */
  closed: Promise<void>;
}

/** npmStart runs `npm start` in the clone and resolves once it logs that it listens. */
async function npmStart(address: string): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, GRPC_ADDRESS: address, LOG_LEVEL: "info" };
  delete env.DATABASE_URL;
  const child = spawn("npm", ["start"], { cwd: clone, env, detached: true, stdio: ["ignore", "pipe", "inherit"] });
  const logs: Record<string, unknown>[] = [];
  const closed = new Promise<void>((resolve) => child.stdout!.once("close", resolve));
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`npm start exited with ${code}: ${JSON.stringify(logs)}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (typeof entry.msg === "string" && entry.msg.startsWith("blog-service listening on")) resolve();
    });
  });
  return { child, logs, closed };
}

/**
 * stop sends SIGTERM to the whole process group, as `kill` of a terminal job
 * would, and returns the service's last log message once it has exited.
 */
async function stop({ child, logs, closed }: Started): Promise<unknown> {
  process.kill(-child.pid!, "SIGTERM");
  await closed;
  return logs.at(-1)?.msg;
}

async function postgresRunningOn(dataDir: string): Promise<boolean> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes("postgres") && cmdline.includes(dataDir)) return true;
  }
  return false;
}

it("npm ci && npm start serves on an embedded PostgreSQL that keeps its data", { timeout: 600_000 }, async () => {
  await run("git", ["clone", "--quiet", root, clone]);
  await run("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: clone, maxBuffer: 64 << 20 });
  const address = `127.0.0.1:${await freePort()}`;

  const first = await npmStart(address);
  const started = first.logs.find((l) => l.msg === "started embedded PostgreSQL (DATABASE_URL is unset)");
  assert.ok(started, "the service says it started the embedded PostgreSQL");
  const dataDir = String(started.dataDir);
  dataDirs.add(dataDir);
  if (process.getuid?.() === 0) {
    assert.ok(dataDir.startsWith(os.tmpdir()), `as root under a mode-700 checkout the data moves to tmp: ${dataDir}`);
  }
  const users = createClient(UserService, address, credentials.createInsecure());
  try {
    const { user } = await users.createUser({ user: { name: "Fresh Clone", age: 1 } });
    assert.equal(user?.name, "Fresh Clone");
    assert.equal(await stop(first), "stopped", "SIGTERM shuts the service down in order");
    assert.equal(await postgresRunningOn(dataDir), false, "the embedded PostgreSQL stopped with the service");

    const second = await npmStart(address);
    try {
      const again = await users.getUser({ id: user!.id, view: UserView.FULL });
      assert.equal(again.user?.name, "Fresh Clone", "data survives a restart");
    } finally {
      assert.equal(await stop(second), "stopped");
    }
  } finally {
    users.close();
  }
});
