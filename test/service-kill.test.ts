// kill -9 of the service in the middle of a stream of writes: every write it
// acknowledged is in the database, and no batch is half-written.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, it } from "node:test";
import { credentials, status } from "@grpc/grpc-js";
import pg from "pg";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { createClient } from "../src/client/transport.js";
import type { ClientError } from "../src/client/transport.js";
import { createTestDatabase } from "./helpers.js";
import { until } from "./poll.js";

const root = new URL("..", import.meta.url).pathname;
const batchSize = 25;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
before(async () => {
  database = await createTestDatabase();
});
after(() => database.drop());

/** startService runs `node --import tsx src/main.ts` on a free port and resolves once it listens. */
async function startService(url: string) {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: url,
    GRPC_ADDRESS: "127.0.0.1:0",
    LOG_LEVEL: "info",
  };
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? code)),
  );
  let output = "";
  child.stderr.on("data", (chunk: Buffer) => (output += chunk));
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      output += `${line}\n`;
      try {
        const entry = JSON.parse(line) as { address?: string };
        if (entry.address !== undefined) resolve(entry.address);
      } catch {
        // not a log line
      }
    });
    void exited.then((how) => reject(new Error(`the service exited (${how}) before listening:\n${output}`)));
  });
  return { child, address, exited };
}

interface Acked {
  id: bigint;
  userId: bigint;
  title: string;
}

it("after kill -9 mid-stream, every acknowledged write is stored and no batch is half-written", async () => {
  const service = await startService(database.url);
  const users = createClient(UserService, service.address, credentials.createInsecure());
  const posts = createClient(PostService, service.address, credentials.createInsecure());
  const deadline = () => Date.now() + 10_000;
  const seeded = await Promise.all(
    [1, 2, 3].map(async (n) => (await users.createUser({ user: { name: `Author ${n}`, age: 30 + n } })).user!.id),
  );

  const ackedPosts: Acked[] = [];
  const ackedBatches = new Map<bigint, Acked[]>();
  const endings: ClientError[] = [];
  let killed = false;
  // Each worker writes until a call fails; after the kill every call fails.
  const postWorker = async (w: number) => {
    for (let n = 0; ; n++) {
      const userId = seeded[(w + n) % seeded.length]!;
      const title = `post ${w}-${n}`;
      try {
        const { post } = await posts.createPost(
          { post: { userId, title, content: "x".repeat(n % 50) } },
          { deadline: deadline() },
        );
        ackedPosts.push({ id: post!.id, userId, title });
      } catch (error) {
        endings.push(error as ClientError);
        return;
      }
    }
  };
  const batchWorker = async (w: number) => {
    for (let n = 0; ; n++) {
      try {
        const { user } = await users.createUser(
          { user: { name: `batch ${w}-${n}`, age: 20 } },
          { deadline: deadline() },
        );
        const requests = Array.from({ length: batchSize }, (_, i) => ({
          post: { userId: user!.id, title: `batch post ${w}-${n}-${i}` },
        }));
        const created = await posts.batchCreatePosts({ userId: user!.id, requests }, { deadline: deadline() });
        ackedBatches.set(
          user!.id,
          created.posts.map((p) => ({ id: p.id, userId: p.userId, title: p.title })),
        );
      } catch (error) {
        endings.push(error as ClientError);
        return;
      }
    }
  };
  const workers = [...[0, 1, 2, 3, 4, 5].map((w) => postWorker(w)), ...[0, 1].map((w) => batchWorker(w))];
  try {
    await until("enough writes are acknowledged", () => ackedPosts.length >= 150 && ackedBatches.size >= 3, {
      timeoutMs: 60_000,
    });
    killed = service.child.kill("SIGKILL");
    assert.equal(await service.exited, "SIGKILL");
    await Promise.all(workers);
  } finally {
    if (!killed) service.child.kill("SIGKILL");
    users.close();
    posts.close();
  }
  // Every worker was cut off mid-stream by the kill, not by an error of its own.
  assert.equal(endings.length, workers.length);
  for (const error of endings) assert.equal(error.code, status.UNAVAILABLE, `${status[error.code]}: ${error.details}`);

  const client = new pg.Client(database.url);
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; user_id: string; title: string }>(
      "SELECT id, user_id, title FROM posts",
    );
    const stored = new Map(rows.map((r) => [BigInt(r.id), r]));
    for (const acked of [...ackedPosts, ...[...ackedBatches.values()].flat()]) {
      const row = stored.get(acked.id);
      assert.ok(row, `acknowledged post ${acked.id} (${acked.title}) is stored`);
      assert.deepEqual([BigInt(row.user_id), row.title], [acked.userId, acked.title]);
    }
    const counts = await client.query<{ id: string; name: string; posts: string }>(
      `SELECT u.id, u.name, count(p.id) AS posts FROM users u LEFT JOIN posts p ON p.user_id = u.id
       WHERE u.name LIKE 'batch %' GROUP BY u.id, u.name`,
    );
    for (const user of counts.rows) {
      const n = Number(user.posts);
      assert.ok(n === 0 || n === batchSize, `${user.name} has ${n} posts: 0 or all ${batchSize}`);
      if (ackedBatches.has(BigInt(user.id))) assert.equal(n, batchSize, `${user.name}'s acknowledged batch`);
    }
  } finally {
    await client.end();
  }
});
