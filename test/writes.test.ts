import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import pg from "pg";
import { countStatements, grpcError, startTestEnv } from "./helpers.js";
import { until } from "./poll.js";
import type { TestEnv } from "./helpers.js";

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(() => env.close());

async function newUser(name = "Ada", age = 36) {
  const { user } = await env.users.createUser({ user: { name, age } });
  return user!;
}

describe("etags (AIP-154)", () => {
  it("change on every update and are returned by every read", async () => {
    const user = await newUser();
    const { user: read } = await env.users.getUser({ id: user.id });
    assert.equal(read?.etag, user.etag);
    const { user: updated } = await env.users.updateUser({
      user: { id: user.id, age: 40 },
      updateMask: { paths: ["age"] },
    });
    assert.notEqual(updated?.etag, user.etag);
    assert.notEqual(updated?.etag, "");
  });

  it("make a stale update ABORTED and change nothing", async () => {
    const user = await newUser();
    await env.users.updateUser({ user: { id: user.id, age: 50, etag: user.etag }, updateMask: { paths: ["age"] } });
    const error = await grpcError(
      env.users.updateUser({ user: { id: user.id, name: "Late", etag: user.etag }, updateMask: { paths: ["name"] } }),
    );
    assert.equal(error.code, status.ABORTED);
    assert.equal(error.details, `user ${user.id} has changed since it was read (etag mismatch); read it again`);
    assert.equal((await env.users.getUser({ id: user.id })).user?.name, "Ada");
  });

  it("let exactly one of two racing updaters win", async () => {
    const user = await newUser();
    const results = await Promise.allSettled(
      [1, 2].map((age) =>
        env.users.updateUser({ user: { id: user.id, age, etag: user.etag }, updateMask: { paths: ["age"] } }),
      ),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.equal(lost.reason.code, status.ABORTED);
  });

  it("make a stale delete FAILED_PRECONDITION and delete nothing; a current one deletes", async () => {
    const user = await newUser();
    const { user: updated } = await env.users.updateUser({
      user: { id: user.id, age: 1 },
      updateMask: { paths: ["age"] },
    });
    const error = await grpcError(env.users.deleteUser({ id: user.id, etag: user.etag }));
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.ok((await env.users.getUser({ id: user.id })).user);
    const garbage = await grpcError(env.users.deleteUser({ id: user.id, etag: "not-an-etag" }));
    assert.equal(garbage.code, status.FAILED_PRECONDITION);
    await env.users.deleteUser({ id: user.id, etag: updated!.etag });
    assert.equal((await grpcError(env.users.getUser({ id: user.id }))).code, status.NOT_FOUND);
  });

  it("work on posts too", async () => {
    const user = await newUser();
    const { post } = await env.posts.createPost({ post: { userId: user.id, title: "T" } });
    await env.posts.updatePost({ post: { id: post!.id, title: "T2", etag: post!.etag } });
    const stale = await grpcError(env.posts.updatePost({ post: { id: post!.id, title: "T3", etag: post!.etag } }));
    assert.equal(stale.code, status.ABORTED);
    const staleDelete = await grpcError(env.posts.deletePost({ id: post!.id, etag: post!.etag }));
    assert.equal(staleDelete.code, status.FAILED_PRECONDITION);
    assert.equal((await env.posts.getPost({ id: post!.id })).post?.title, "T2");
  });
});

describe("idempotent creates (AIP-155)", () => {
  it("replay the original user for a retry and write nothing new", async () => {
    const requestId = randomUUID();
    const first = await env.users.createUser({ user: { name: "Once", age: 1 }, requestId });
    const again = await env.users.createUser({ user: { name: "Once", age: 1 }, requestId });
    assert.equal(again.user?.id, first.user?.id);
    assert.equal(again.user?.etag, first.user?.etag);
    const rows = await env.db("users").where({ name: "Once" });
    assert.equal(rows.length, 1);
  });

  it("create one row for 20 concurrent calls with one request_id", async () => {
    const requestId = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => env.users.createUser({ user: { name: "Racer", age: 2 }, requestId })),
    );
    assert.equal(new Set(results.map((r) => r.user?.id)).size, 1);
    assert.equal((await env.db("users").where({ name: "Racer" })).length, 1);
  });

  it("reject the same request_id with a different payload as INVALID_ARGUMENT", async () => {
    const requestId = randomUUID();
    await env.users.createUser({ user: { name: "First", age: 3 }, requestId });
    const error = await grpcError(env.users.createUser({ user: { name: "Second", age: 3 }, requestId }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "request_id: was already used for a different request; use a new UUID");
    const reusedForPost = await grpcError(
      env.posts.createPost({ post: { userId: (await newUser()).id, title: "x" }, requestId }),
    );
    assert.equal(reusedForPost.code, status.INVALID_ARGUMENT, "a request_id belongs to one method");
    assert.equal((await env.db("users").where({ name: "Second" })).length, 0);
  });

  it("validate request_id as a UUID", async () => {
    const error = await grpcError(env.users.createUser({ user: { name: "X", age: 1 }, requestId: "not-a-uuid" }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.match(error.details, /^request_id: /);
  });

  it("replay posts, and forget request_ids past the retention window", async () => {
    const user = await newUser();
    const requestId = randomUUID();
    const first = await env.posts.createPost({ post: { userId: user.id, title: "Hello" }, requestId });
    const again = await env.posts.createPost({ post: { userId: user.id, title: "Hello" }, requestId });
    assert.equal(again.post?.id, first.post?.id);
    await env
      .db("idempotency_keys")
      .where({ requestId })
      .update({ createTime: env.db.raw("now() - interval '25 hours'") });
    const later = await env.posts.createPost({ post: { userId: user.id, title: "Hello" }, requestId });
    assert.notEqual(later.post?.id, first.post?.id, "an expired request_id starts over");
  });

  it("does not keep a request_id when the create fails", async () => {
    const requestId = randomUUID();
    const missing = await grpcError(env.posts.createPost({ post: { userId: 999_999n, title: "x" }, requestId }));
    assert.equal(missing.code, status.NOT_FOUND);
    assert.equal(await env.db("idempotency_keys").where({ requestId }).first(), undefined);
  });
});

describe("BatchCreatePosts (AIP-233)", () => {
  it("creates every post in order with one INSERT", async () => {
    const user = await newUser();
    const requests = Array.from({ length: 1000 }, (_, i) => ({ post: { userId: user.id, title: `t${i}` } }));
    const { posts } = await env.posts.batchCreatePosts({ userId: user.id, requests });
    assert.deepEqual(
      posts.map((p) => p.title),
      requests.map((r) => r.post.title),
    );
    // What the batch answered is what is stored: ids, times and etags as a later read sees them.
    assert.deepEqual((await env.users.getUser({ id: user.id, view: UserView.FULL })).user?.posts, posts);
  });

  it("is all or nothing", async () => {
    const user = await newUser();
    const requests = [{ post: { userId: user.id, title: "ok" } }, { post: { userId: user.id, title: "" } }];
    const invalid = await grpcError(env.posts.batchCreatePosts({ userId: user.id, requests }));
    assert.equal(invalid.code, status.INVALID_ARGUMENT);
    assert.match(invalid.details, /^requests\[1\]\.post\.title: /);
    const missing = await grpcError(
      env.posts.batchCreatePosts({ userId: 888_888n, requests: [{ post: { userId: 888_888n, title: "x" } }] }),
    );
    assert.equal(missing.code, status.NOT_FOUND);
    assert.equal(missing.details, "user 888888 not found");
    assert.equal((await env.db("posts").where("user_id", String(user.id))).length, 0);
  });

  it("enforces the limits and the parent", async () => {
    const user = await newUser();
    const tooMany = Array.from({ length: 1001 }, () => ({ post: { userId: user.id, title: "t" } }));
    const big = await grpcError(env.posts.batchCreatePosts({ userId: user.id, requests: tooMany }));
    assert.equal(big.code, status.INVALID_ARGUMENT);
    assert.equal(big.details, "requests: must contain no more than 1000 item(s)");
    const none = await grpcError(env.posts.batchCreatePosts({ userId: user.id, requests: [] }));
    assert.equal(none.details, "requests: must contain at least 1 item(s)");
    const other = await grpcError(
      env.posts.batchCreatePosts({ userId: user.id, requests: [{ post: { userId: user.id + 1n, title: "x" } }] }),
    );
    assert.equal(other.details, "every requests[].post.user_id must equal user_id");
  });

  it("with a request_id creates the batch once: retries replay it, racing ones too, and nothing is written twice", async () => {
    const user = await newUser();
    const requests = Array.from({ length: 50 }, (_, i) => ({ post: { userId: user.id, title: `once ${i}` } }));
    const requestId = randomUUID();
    const first = await env.posts.batchCreatePosts({ userId: user.id, requests, requestId });
    const ids = first.posts.map((p) => p.id);
    const retries = await Promise.all(
      Array.from({ length: 5 }, () => env.posts.batchCreatePosts({ userId: user.id, requests, requestId })),
    );
    for (const retry of retries) {
      assert.deepEqual(
        retry.posts.map((p) => p.id),
        ids,
      );
      assert.deepEqual(
        retry.posts.map((p) => p.title),
        requests.map((r) => r.post.title),
      );
    }
    assert.equal((await env.db("posts").where("user_id", String(user.id))).length, 50);
    // A replay reads the posts back with GetPost's one text (id = any(...)), whatever the batch's size.
    const replay = await countStatements(env.db, () =>
      env.posts.batchCreatePosts({ userId: user.id, requests, requestId }),
    );
    const reads = replay.filter((sql) => /from "posts"/.test(sql));
    assert.equal(reads.length, 1, reads.join("\n"));
    assert.match(reads[0]!, /from "posts" where "id" = any\(\$1::bigint\[\]\)$/);
    // 20 racers with a fresh request_id: one batch.
    const racingId = randomUUID();
    const raced = await Promise.all(
      Array.from({ length: 20 }, () => env.posts.batchCreatePosts({ userId: user.id, requests, requestId: racingId })),
    );
    assert.equal(new Set(raced.map((r) => r.posts[0]!.id)).size, 1);
    assert.equal((await env.db("posts").where("user_id", String(user.id))).length, 100);
  });

  it("refuses a request_id reused for another batch, a request_id on one of its requests, and a replay of deleted posts", async () => {
    const user = await newUser();
    const requestId = randomUUID();
    const requests = [{ post: { userId: user.id, title: "a" } }, { post: { userId: user.id, title: "b" } }];
    const { posts } = await env.posts.batchCreatePosts({ userId: user.id, requests, requestId });
    const reused = await grpcError(
      env.posts.batchCreatePosts({ userId: user.id, requests: requests.slice(0, 1), requestId }),
    );
    assert.equal(reused.code, status.INVALID_ARGUMENT);
    assert.equal(reused.details, "request_id: was already used for a different request; use a new UUID");
    // A request_id inside the batch would not make it idempotent, so it is refused rather than ignored.
    const inner = await grpcError(
      env.posts.batchCreatePosts({
        userId: user.id,
        requests: [{ post: { userId: user.id, title: "c" }, requestId: randomUUID() }],
      }),
    );
    assert.equal(inner.code, status.INVALID_ARGUMENT);
    assert.equal(
      inner.details,
      "requests[].request_id must be empty: a batch is made idempotent by its own request_id",
    );
    await env.posts.deletePost({ id: posts[1]!.id });
    const gone = await grpcError(env.posts.batchCreatePosts({ userId: user.id, requests, requestId }));
    assert.equal(gone.code, status.NOT_FOUND);
    assert.equal((await env.db("posts").where("user_id", String(user.id))).length, 1);
  });
});

describe("BatchGetUsers (AIP-231)", () => {
  it("keeps the requested order, duplicates included", async () => {
    const [a, b, c] = [await newUser("A"), await newUser("B"), await newUser("C")];
    const { users } = await env.users.batchGetUsers({ ids: [c.id, a.id, b.id, a.id] });
    assert.deepEqual(
      users.map((u) => u.name),
      ["C", "A", "B", "A"],
    );
  });

  it("answers NOT_FOUND listing every missing id", async () => {
    const a = await newUser("A");
    const error = await grpcError(env.users.batchGetUsers({ ids: [a.id, 900_001n, 900_002n] }));
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.details, "users 900001, 900002 not found");
  });

  it("enforces 1..1000 ids", async () => {
    assert.equal((await grpcError(env.users.batchGetUsers({ ids: [] }))).code, status.INVALID_ARGUMENT);
    const many = Array.from({ length: 1001 }, (_, i) => BigInt(i + 1));
    const error = await grpcError(env.users.batchGetUsers({ ids: many }));
    assert.equal(error.details, "ids: must contain no more than 1000 item(s)");
  });
});

describe("request id retention", () => {
  it("pruning forgets only request ids past 24 hours", async () => {
    const { pruneRequestIds } = await import("../src/db/idempotency.js");
    const [old, fresh] = [randomUUID(), randomUUID()];
    await env.users.createUser({ user: { name: "Old", age: 1 }, requestId: old });
    await env.users.createUser({ user: { name: "Fresh", age: 1 }, requestId: fresh });
    await env
      .db("idempotency_keys")
      .where({ requestId: old })
      .update({ createTime: env.db.raw("now() - interval '25 hours'") });
    assert.ok((await pruneRequestIds(env.db)) >= 1);
    const left = (await env.db("idempotency_keys").whereIn("request_id", [old, fresh])).map((r) => r.requestId);
    assert.deepEqual(left, [fresh]);
  });
});

describe("concurrent updates", () => {
  it("share one statement, and each caller still gets its own outcome", async () => {
    const users = await Promise.all(Array.from({ length: 20 }, (_, i) => newUser(`U${i}`, i)));
    const stale = users[3]!;
    await env.users.updateUser({ user: { id: stale.id, age: 99 }, updateMask: { paths: ["age"] } });
    let results: PromiseSettledResult<unknown>[] = [];
    const statements = await countStatements(env.db, async () => {
      results = await Promise.allSettled([
        ...users.map((u, i) =>
          env.users.updateUser({ user: { id: u.id, age: 100 + i, etag: u.etag }, updateMask: { paths: ["age"] } }),
        ),
        env.users.updateUser({ user: { id: 987_987n, age: 1 }, updateMask: { paths: ["age"] } }),
        env.users.updateUser({ user: { id: users[5]!.id, name: "Renamed" }, updateMask: { paths: ["name"] } }),
      ]);
    });
    // One by one: 22 UPDATEs plus 2 existence checks. Batched: a few.
    assert.ok(statements.length <= 10, `${statements.length} statements`);
    results.slice(0, 20).forEach((r, i) => {
      if (i === 3) {
        assert.equal(r.status, "rejected");
        assert.equal((r as PromiseRejectedResult).reason.code, status.ABORTED);
      } else {
        assert.equal(r.status, "fulfilled", `update ${i}: ${r.status === "rejected" ? r.reason.details : ""}`);
        assert.equal((r as PromiseFulfilledResult<{ user?: { age: number } }>).value.user?.age, 100 + i);
      }
    });
    assert.equal((results[20] as PromiseRejectedResult).reason.code, status.NOT_FOUND);
    const renamed = await env.users.getUser({ id: users[5]!.id });
    assert.equal(renamed.user?.name, "Renamed");
    assert.equal(renamed.user?.age, 105, "both updates to one user applied, one after the other");
  });

  it(
    "do not wait on a row another transaction holds; its own update keeps its deadline",
    { timeout: 20_000 },
    async () => {
      const users = await Promise.all(Array.from({ length: 8 }, (_, i) => newUser(`L${i}`, i)));
      const locked = users[0]!;
      const lock = new pg.Client({ connectionString: env.db.client.config.connection.connectionString });
      await lock.connect();
      try {
        await lock.query("BEGIN");
        await lock.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", [String(locked.id)]);
        const update = (id: bigint, age: number, deadline?: number) =>
          env.users.updateUser({ user: { id, age }, updateMask: { paths: ["age"] } }, deadline ? { deadline } : {});
        const blocked = grpcError(update(locked.id, 77, Date.now() + 700));
        // The others finish while the lock is still held: the shared statement skipped the locked row.
        const others = await Promise.all(users.slice(1).map((u, i) => update(u.id, 50 + i)));
        others.forEach((r, i) => assert.equal(r.user?.age, 50 + i));
        assert.equal((await blocked).code, status.DEADLINE_EXCEEDED);
        // The server's deadline (sent relative, so a little later than the client's) cancels the waiting UPDATE.
        const waiting = async () => {
          const { rows } = await env.db.raw<{ rows: unknown[] }>(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
          );
          return rows.length;
        };
        await until("the update waiting on the lock is cancelled", async () => (await waiting()) === 0);
      } finally {
        await lock.query("ROLLBACK");
        await lock.end();
      }
      assert.equal((await env.users.getUser({ id: locked.id })).user?.age, 0, "the timed-out update did not apply");
    },
  );
});
