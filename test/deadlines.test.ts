import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

// A row lock held by the test makes the service's UPDATE wait on purpose; the
// question is whether the service's statement is still waiting in PostgreSQL
// after the call has ended.

let env: TestEnv;
let url: string;
before(async () => {
  env = await startTestEnv();
  url = env.db.client.config.connection.connectionString;
});
after(() => env.close());

async function withClient<T>(work: (client: pg.Client) => Promise<T>, connectionString = url): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The service's statements (application_name blog-service) currently running
 * in this database, read on a fresh connection: inside a transaction
 * pg_stat_activity is a snapshot.
 */
function serviceStatements(connectionString = url): Promise<string[]> {
  return withClient(async (c) => {
    const { rows } = await c.query(
      "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'blog-service' AND state = 'active' AND pid <> pg_backend_pid()",
    );
    return rows.map((r: { query: string }) => r.query);
  }, connectionString);
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** lockRow holds FOR UPDATE on the user until the returned release is called. */
async function lockRow(id: bigint): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("BEGIN");
  await client.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", [String(id)]);
  return async () => {
    await client.query("ROLLBACK");
    await client.end();
  };
}

const isUpdate = (sql: string) => /^update "users"/i.test(sql);

describe("deadlines and cancellation reach PostgreSQL", () => {
  it("a passed deadline cancels the waiting statement in the database", async () => {
    const { user } = await env.users.createUser({ user: { name: "Locked", age: 1 } });
    const release = await lockRow(user!.id);
    try {
      const error = await grpcError(
        env.users.updateUser(
          { user: { id: user!.id, age: 2 }, updateMask: { paths: ["age"] } },
          { deadline: Date.now() + 500 },
        ),
      );
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
      await until(async () => !(await serviceStatements()).some(isUpdate), "the UPDATE is gone while the lock is held");
    } finally {
      await release();
    }
    assert.equal((await env.users.getUser({ id: user!.id })).user?.age, 1, "the cancelled update did not apply");
  });

  it("a passed deadline cancels a statement inside a transaction, and nothing of it commits", async () => {
    const { user } = await env.users.createUser({ user: { name: "Batched", age: 1 } });
    const requests = [1, 2, 3].map((i) => ({ post: { userId: user!.id, title: `late ${i}` } }));
    // With a request_id the batch is created inside a transaction, with its idempotency key.
    const batch = { userId: user!.id, requests, requestId: "9b1f3c1e-7a55-4c36-9a43-2f4d4c1b6e01" };
    const isInsert = (sql: string) => /^insert into "posts"/i.test(sql);
    await withClient(async (locker) => {
      // The batch's INSERT waits on the lock.
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE");
      try {
        const error = await grpcError(env.posts.batchCreatePosts(batch, { deadline: Date.now() + 500 }));
        assert.equal(error.code, status.DEADLINE_EXCEEDED);
        await until(
          async () => !(await serviceStatements()).some(isInsert),
          "the INSERT is gone while the lock is held",
        );
      } finally {
        await locker.query("ROLLBACK");
      }
    });
    const { posts } = await env.posts.listPosts({ userId: user!.id });
    assert.deepEqual(posts, [], "the cancelled batch did not commit");
    // The key rolled back with the batch, so a retry with it creates the batch; the connection went
    // back to the pool outside any transaction.
    assert.equal((await env.posts.batchCreatePosts(batch)).posts.length, 3);
  });

  it("a client's cancel cancels the running statement", async () => {
    const { user } = await env.users.createUser({ user: { name: "Locked too", age: 1 } });
    const release = await lockRow(user!.id);
    try {
      const controller = new AbortController();
      const call = env.users.updateUser(
        { user: { id: user!.id, age: 3 }, updateMask: { paths: ["age"] } },
        { signal: controller.signal },
      );
      await until(async () => (await serviceStatements()).some(isUpdate), "the UPDATE waits on the lock");
      controller.abort();
      assert.equal((await grpcError(call)).code, status.CANCELLED);
      await until(async () => !(await serviceStatements()).some(isUpdate), "the UPDATE is gone while the lock is held");
    } finally {
      await release();
    }
    assert.equal((await env.users.getUser({ id: user!.id })).user?.age, 1);
  });

  it("a call whose deadline has already passed sends no SQL", async () => {
    const error = await grpcError(env.users.getUser({ id: 1n }, { deadline: Date.now() - 1 }));
    assert.equal(error.code, status.DEADLINE_EXCEEDED);
  });
});

describe("a saturated pool", () => {
  let small: TestEnv;
  before(async () => {
    small = await startTestEnv({ poolMax: 1, acquireTimeoutMs: 300 });
  });
  after(() => small.close());

  it("answers UNAVAILABLE quickly instead of queueing until the deadline", async () => {
    const { user } = await small.users.createUser({ user: { name: "Busy", age: 1 } });
    const lock = new pg.Client({ connectionString: small.db.client.config.connection.connectionString });
    await lock.connect();
    await lock.query("BEGIN");
    await lock.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", [String(user!.id)]);
    try {
      // The only pooled connection now waits on the lock...
      const blocked = small.users.updateUser(
        { user: { id: user!.id, age: 2 }, updateMask: { paths: ["age"] } },
        { deadline: Date.now() + 10_000 },
      );
      const smallUrl = small.db.client.config.connection.connectionString;
      await until(async () => (await serviceStatements(smallUrl)).some(isUpdate), "the pool's connection is busy");
      // ...so the next call cannot get one: it fails fast, long before its own deadline.
      const error = await grpcError(small.users.getUser({ id: user!.id }, { deadline: Date.now() + 10_000 }));
      assert.equal(error.code, status.UNAVAILABLE);
      assert.match(error.details, /retry/);
      await lock.query("ROLLBACK");
      assert.equal((await blocked).user?.age, 2);
    } finally {
      await lock.end();
    }
  });
});

describe("a stream the reader leaves early", () => {
  let single: TestEnv;
  before(async () => {
    single = await startTestEnv({ poolMax: 1 });
    await single.db("users").insert(Array.from({ length: 2000 }, (_, i) => ({ name: `s${i}`, age: 1 })));
  });
  after(() => single.close());

  it("stops watching its connection, so its deadline cannot cancel the next call's statement", async () => {
    const exportDeadline = Date.now() + 1500;
    for await (const message of single.users.exportUsers({}, { deadline: exportDeadline })) {
      assert.equal(message.users.length, 500);
      break;
    }
    const [first] = await single.db("users").select("id").orderBy("id").limit(1);
    const lock = new pg.Client({ connectionString: single.db.client.config.connection.connectionString });
    await lock.connect();
    await lock.query("BEGIN");
    await lock.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", [String(first.id)]);
    try {
      // The pool's only connection, used by the export before, now runs this UPDATE...
      const update = single.users.updateUser(
        { user: { id: first.id, age: 9 }, updateMask: { paths: ["age"] } },
        { deadline: Date.now() + 20_000 },
      );
      const url = single.db.client.config.connection.connectionString;
      await until(async () => (await serviceStatements(url)).some(isUpdate), "the UPDATE waits on the lock");
      // ...and is still running after the export's deadline has passed.
      await until(async () => Date.now() > exportDeadline + 500, "the export's deadline is well past");
      assert.ok((await serviceStatements(url)).some(isUpdate), "the UPDATE was not cancelled");
      await lock.query("ROLLBACK");
      assert.equal((await update).user?.age, 9);
    } finally {
      await lock.end();
    }
  });
});
