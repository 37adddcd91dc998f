import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { poolOf } from "../src/db/knex-internals.js";
import { grpcError, startTestEnv } from "./helpers.js";
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
  const client = new pg.Client({ connectionString: env.db.client.config.connection.connectionString });
  await client.connect();
  try {
    const { rows } = await client.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'select \"posts\".*%' AND state <> 'idle' AND pid <> pg_backend_pid()",
    );
    return rows[0].n as number;
  } finally {
    await client.end();
  }
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
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
      await until(async () => pool.numUsed() === 0 && (await cursorQueries()) === 0, "the exports hold nothing");
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
