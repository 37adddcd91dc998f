import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { poolOf } from "../src/db/knex-internals.js";
import {
  countStatements,
  grpcError,
  metricValue,
  poolBackends,
  queryOnce,
  startTestEnv,
  terminatePool,
  untilStalled,
} from "./helpers.js";
import { until } from "./poll.js";
import { slowReader } from "./slow-reader.js";
import type { TestEnv } from "./helpers.js";

let env: TestEnv;
let userIds: bigint[] = [];
before(async () => {
  env = await startTestEnv();
  const users = await env
    .db("users")
    .insert(Array.from({ length: 300 }, (_, i) => ({ name: `u${i}`, age: i % 100 })))
    .returning("id");
  userIds = users.map((u: { id: bigint }) => u.id);
  const posts = userIds.flatMap((userId, i) =>
    Array.from({ length: 100 }, (_, j) => ({ userId, title: `p${i}-${j}`, content: "x".repeat(20) })),
  );
  for (let i = 0; i < posts.length; i += 5000) await env.db("posts").insert(posts.slice(i, i + 5000));
});
after(() => env.close());

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const message of stream) all.push(message);
  return all;
}

it("streams every matching user in order, in batches of up to 500", async () => {
  const messages = await collect(env.users.exportUsers({ filter: "age < 50", orderBy: "age desc" }));
  const users = messages.flatMap((m) => m.users);
  assert.equal(users.length, 150);
  assert.ok(users.every((u, i) => i === 0 || users[i - 1]!.age >= u.age));
  const all = await collect(env.posts.exportPosts({}));
  assert.deepEqual(
    all.map((m) => m.posts.length),
    [...Array(60).fill(500)],
  );
  const ids = all.flatMap((m) => m.posts.map((p) => p.id));
  assert.equal(new Set(ids).size, 30_000);
});

it("exports one user's posts with a filter", async () => {
  const [message, ...rest] = await collect(env.posts.exportPosts({ userId: userIds[7]!, filter: 'title:"-9"' }));
  assert.deepEqual(rest, []);
  assert.deepEqual(
    message?.posts.map((p) => p.title),
    ["p7-9", "p7-90", "p7-91", "p7-92", "p7-93", "p7-94", "p7-95", "p7-96", "p7-97", "p7-98", "p7-99"],
  );
});

it("rejects a bad filter before streaming anything", async () => {
  const error = await grpcError(collect(env.posts.exportPosts({ filter: "title ~ 1" })));
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.match(error.details, /^filter: unexpected character "~" at position 7$/);
});

async function cursorQueries(): Promise<number> {
  const [row] = await queryOnce<{ n: number }>(
    env.db.client.config.connection.connectionString as string,
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%select \"posts\".*%' AND state <> 'idle' AND pid <> pg_backend_pid()",
  );
  return row!.n;
}

it(
  "holds no database connection while its client does not read, so stalled exports starve no other call",
  { timeout: 60_000 },
  async () => {
    // More stalled exports than the pool (5) has connections: each reads one
    // message and stops, so HTTP/2 flow control soon holds the server's writes.
    const controller = new AbortController();
    const stalled = Array.from({ length: 7 }, () =>
      env.posts.exportPosts({}, { signal: controller.signal })[Symbol.asyncIterator](),
    );
    try {
      for (const iterator of stalled) assert.equal((await iterator.next()).value?.posts.length, 500);
      // No statement of an export runs, no connection is checked out, while they wait on their clients.
      const pool = poolOf(env.db)!;
      await until("the exports hold nothing", async () => pool.numUsed() === 0 && (await cursorQueries()) === 0);
      // Every other caller is served (a held pool would answer UNAVAILABLE after the acquire timeout).
      const users = await Promise.all(userIds.slice(0, 20).map((id) => env.users.getUser({ id })));
      assert.equal(users.length, 20);
      // A stalled export goes on where it stopped once its client reads again.
      let received = 500;
      for (let next = await stalled[0]!.next(); !next.done; next = await stalled[0]!.next()) {
        received += next.value.posts.length;
      }
      assert.equal(received, 30_000);
    } finally {
      controller.abort();
      await Promise.allSettled(stalled.map((iterator) => iterator.return?.()));
    }
  },
);

const exportStatement = /select "posts"\.\*/;

/** allPostIds are every post's id, in the order ExportPosts gives them by default. */
async function allPostIds(): Promise<bigint[]> {
  return (await env.db("posts").select("id").orderBy("id")).map((r: { id: bigint }) => r.id);
}

/** assertServedAfter checks that the pool gave every connection back and that other calls are served. */
async function assertServedAfter() {
  await until("the pool has no connection checked out", async () => poolOf(env.db)!.numUsed() === 0);
  assert.equal(await metricValue(env.server, "db_client_connection_count", { state: "used" }), 0);
  const { user } = await env.users.getUser({ id: userIds[3]! }, { deadline: Date.now() + 5000 });
  assert.equal(user?.name, "u3");
  const posts = await env.posts.listPosts({ userId: userIds[3]!, pageSize: 5 }, { deadline: Date.now() + 5000 });
  assert.equal(posts.posts.length, 5);
}

it(
  "ends an export with UNAVAILABLE at once when the backend running its chunk statement is terminated",
  { timeout: 60_000 },
  async () => {
    const expected = await allPostIds();
    const url = env.db.client.config.connection.connectionString as string;
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    const reader = slowReader((options) => env.posts.exportPosts({}, options));
    try {
      reader.readOne();
      await until("the first message", () => reader.messages.length === 1);
      // The slow reader takes one message now and then; the next chunk statement waits on this lock.
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE");
      let waiting: number | undefined;
      await until("a chunk statement of the export waits on the lock", async () => {
        reader.readOne();
        if (reader.state.error !== undefined || reader.state.ended) assert.fail("the export ended before the kill");
        waiting = (await poolBackends(url)).find((b) => b.waiting && exportStatement.test(b.query))?.pid;
        return waiting !== undefined;
      });
      const killed = await terminatePool(url);
      assert.ok(killed.includes(waiting!), "the backend of the chunk statement was terminated");
      // The lock is still held: the export ends without waiting for it, after the messages already sent.
      await until("the export ends", () => {
        reader.readOne();
        return reader.state.error !== undefined || reader.state.ended;
      });
      const error = reader.state.error;
      assert.equal(error?.code, status.UNAVAILABLE, `${String(error?.code)}: ${error?.details}`);
      assert.equal(error.details, "the request found the database shutting down; retry");
      const ids = reader.messages.flatMap((m) => m.posts.map((p) => p.id));
      assert.deepEqual(ids, expected.slice(0, ids.length), "what arrived is the start of the export, each row once");
      assert.ok(ids.length < expected.length);
      await locker.query("COMMIT");
      await assertServedAfter();
    } finally {
      await reader.stop();
      await locker.end();
    }
  },
);

it(
  "goes on where it stopped, every row once, when the pool's backends are terminated while its client does not read",
  { timeout: 60_000 },
  async () => {
    const expected = await allPostIds();
    const url = env.db.client.config.connection.connectionString as string;
    const reader = slowReader((options) => env.posts.exportPosts({}, options));
    try {
      reader.readOne();
      await until("the first message", () => reader.messages.length === 1);
      // The client reads no more: the export waits on flow control, with no statement running.
      await untilStalled(env.db, exportStatement);
      assert.equal(poolOf(env.db)!.numUsed(), 0);
      const killed = await terminatePool(url);
      assert.ok(killed.length > 0, "the pool had connections to terminate");
      await until("the terminated backends are gone", async () =>
        (await poolBackends(url)).every((b) => !killed.includes(b.pid)),
      );
      const statements = await countStatements(env.db, async () => {
        assert.equal(await reader.readToEnd(), undefined, "the export ends OK");
      });
      assert.ok(
        statements.some((sql) => exportStatement.test(sql)),
        "chunks were read after the kill, on new connections",
      );
      const ids = reader.messages.flatMap((m) => m.posts.map((p) => p.id));
      assert.equal(ids.length, expected.length);
      assert.deepEqual(ids, expected, "every row once, in order");
      await assertServedAfter();
    } finally {
      await reader.stop();
    }
  },
);

it("splits messages by size: posts of 100,000 characters never make a message over the send limit", async () => {
  const [owner] = await env.db("users").insert({ name: "long posts", age: 1 }).returning("id");
  const userId = (owner as { id: bigint }).id;
  const content = "é".repeat(100_000); // 200,000 bytes in UTF-8
  await env.db("posts").insert(Array.from({ length: 60 }, (_, i) => ({ userId, title: `long ${i}`, content })));
  const messages = await collect(env.posts.exportPosts({ userId }));
  assert.deepEqual(
    messages.flatMap((m) => m.posts.map((p) => p.title)),
    Array.from({ length: 60 }, (_, i) => `long ${i}`),
  );
  // 60 x 200 kB is 12 MB: at most 5 posts fit in 1 MiB.
  assert.ok(messages.length >= 12, `${messages.length} messages`);
  assert.ok(messages.every((m) => m.posts.length <= 5));
});
