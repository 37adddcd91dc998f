import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { countStatements, distinctStatements, grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

let env: TestEnv;
let userId: bigint;
before(async () => {
  env = await startTestEnv();
  const { user } = await env.users.createUser({ user: { name: "Author", age: 40 } });
  userId = user!.id;
});
after(() => env.close());

async function postCount(): Promise<number> {
  const row = await env.db("posts").count({ n: "*" }).first();
  return Number(row?.n);
}

describe("CreatePost", () => {
  it("stores a post for an existing user", async () => {
    const { post } = await env.posts.createPost({ post: { userId, title: " Title ", content: "Body" } });
    assert.ok(post && post.id > 0n);
    assert.equal(post.userId, userId);
    assert.equal(post.title, "Title");
    assert.equal(post.content, "Body");
    assert.ok(post.createTime && post.updateTime);
    assert.deepEqual((await env.posts.getPost({ id: post.id })).post, post);
  });

  it("answers NOT_FOUND naming the user when user_id names no user, and stores nothing", async () => {
    const before = await postCount();
    const error = await grpcError(env.posts.createPost({ post: { userId: 987_654n, title: "Orphan" } }));
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.details, "user 987654 not found");
    assert.equal(await postCount(), before);
  });

  const invalid: [string, object, string | RegExp][] = [
    ["a missing post", {}, "post: value is required"],
    ["no user_id", { post: { title: "T" } }, "post: user_id must be greater than 0"],
    ["an empty title", { post: { userId: 1n, title: "" } }, /^post\.title: must be 1 to 300 characters after trimming/],
    ["a 301-character title", { post: { userId: 1n, title: "t".repeat(301) } }, /^post\.title: /],
    [
      "content over 100,000 characters",
      { post: { userId: 1n, title: "T", content: "c".repeat(100_001) } },
      "post.content: must be at most 100000 characters",
    ],
  ];
  for (const [what, request, message] of invalid) {
    it(`rejects ${what} with INVALID_ARGUMENT`, async () => {
      const before = await postCount();
      const error = await grpcError(env.posts.createPost(request));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      if (typeof message === "string") assert.equal(error.details, message);
      else assert.match(error.details, message);
      assert.equal(await postCount(), before);
    });
  }

  it("accepts content of exactly 100,000 characters, unicode counted as characters", async () => {
    const content = "é".repeat(100_000);
    const { post } = await env.posts.createPost({ post: { userId, title: "Long", content } });
    assert.equal(post?.content, content);
  });
});

describe("GetPost", () => {
  it("answers NOT_FOUND naming the id, INVALID_ARGUMENT for id 0", async () => {
    const missing = await grpcError(env.posts.getPost({ id: 55_555n }));
    assert.equal(missing.code, status.NOT_FOUND);
    assert.equal(missing.details, "post 55555 not found");
    const zero = await grpcError(env.posts.getPost({ id: 0n }));
    assert.equal(zero.code, status.INVALID_ARGUMENT);
    assert.equal(zero.details, "id: must be greater than 0");
  });

  it("reads a batch of any size with one statement text, so one prepared statement serves every size", async () => {
    const created = await Promise.all(
      Array.from({ length: 12 }, (_, i) => env.posts.createPost({ post: { userId, title: `Sized ${i}` } })),
    );
    const { texts, counts } = await distinctStatements(
      env.db,
      [1, 2, 5, 12].map((size) => async () => {
        const posts = created.slice(0, size).map((c) => c.post!);
        const answers = await Promise.all(posts.map((p) => env.posts.getPost({ id: p.id })));
        assert.deepEqual(
          answers.map((a) => a.post?.title),
          posts.map((p) => p.title),
        );
      }),
    );
    assert.equal(texts.length, 1, texts.join("\n"));
    // One text is also what a statement per call would send: the 12 concurrent calls must have shared statements.
    assert.ok(counts[3]! < 12, `12 concurrent GetPost calls took ${counts[3]} statements: they were not batched`);
  });
});

describe("UpdatePost", () => {
  it("changes the masked fields only and never the owner", async () => {
    const other = (await env.users.createUser({ user: { name: "Other", age: 1 } })).user!;
    const { post } = await env.posts.createPost({ post: { userId, title: "Draft", content: "old" } });
    const { post: updated } = await env.posts.updatePost({
      post: { id: post!.id, userId: other.id, title: "ignored", content: "new" },
      updateMask: { paths: ["content"] },
    });
    assert.equal(updated?.content, "new");
    assert.equal(updated?.title, "Draft");
    assert.equal(updated?.userId, userId);
  });

  it("without a mask changes the non-default fields", async () => {
    const { post } = await env.posts.createPost({ post: { userId, title: "Draft", content: "keep" } });
    const { post: updated } = await env.posts.updatePost({ post: { id: post!.id, title: "Final" } });
    assert.equal(updated?.title, "Final");
    assert.equal(updated?.content, "keep");
  });

  it("rejects unknown paths and invalid masked values; NOT_FOUND for a missing post", async () => {
    const { post } = await env.posts.createPost({ post: { userId, title: "Stay" } });
    const path = await grpcError(
      env.posts.updatePost({ post: { id: post!.id, title: "X" }, updateMask: { paths: ["user_id"] } }),
    );
    assert.equal(path.code, status.INVALID_ARGUMENT);
    assert.equal(path.details, 'update_mask: paths must be "title" or "content"');
    const title = await grpcError(env.posts.updatePost({ post: { id: post!.id }, updateMask: { paths: ["title"] } }));
    assert.equal(title.code, status.INVALID_ARGUMENT);
    assert.match(title.details, /^post\.title: /);
    assert.equal((await env.posts.getPost({ id: post!.id })).post?.title, "Stay");
    const missing = await grpcError(env.posts.updatePost({ post: { id: 31_337n, title: "X" } }));
    assert.equal(missing.code, status.NOT_FOUND);
    assert.equal(missing.details, "post 31337 not found");
  });
});

describe("DeletePost", () => {
  it("deletes one post and leaves the user and the user's other posts", async () => {
    const a = (await env.posts.createPost({ post: { userId, title: "A" } })).post!;
    const b = (await env.posts.createPost({ post: { userId, title: "B" } })).post!;
    await env.posts.deletePost({ id: a.id });
    assert.equal((await grpcError(env.posts.getPost({ id: a.id }))).code, status.NOT_FOUND);
    assert.equal((await env.posts.getPost({ id: b.id })).post?.title, "B");
    assert.equal((await env.users.getUser({ id: userId })).user?.name, "Author");
    const again = await grpcError(env.posts.deletePost({ id: a.id }));
    assert.equal(again.code, status.NOT_FOUND);
    assert.equal(again.details, `post ${a.id} not found`);
  });
});

describe("concurrent creates", () => {
  it("share one INSERT, and one caller's missing user fails only that caller", async () => {
    const requests = Array.from({ length: 30 }, (_, i) => ({ post: { userId, title: `c${i}` } }));
    let results: PromiseSettledResult<Awaited<ReturnType<typeof env.posts.createPost>>>[] = [];
    const statements = await countStatements(env.db, async () => {
      results = await Promise.allSettled([
        ...requests.map((r) => env.posts.createPost(r)),
        env.posts.createPost({ post: { userId: 424_242n, title: "orphan" } }),
      ]);
    });
    const created = results.slice(0, 30).map((r) => (r.status === "fulfilled" ? r.value.post?.title : r.reason));
    assert.deepEqual(
      created,
      requests.map((r) => r.post.title),
    );
    const orphan = results[30]!;
    assert.equal(orphan.status, "rejected");
    assert.equal((orphan as PromiseRejectedResult).reason.details, "user 424242 not found");
    // One by one would be 31 INSERTs; halving around the bad row needs about 2·log2(31).
    assert.ok(statements.length <= 16, `${statements.length} statements`);
    const stored = await env.db("posts").where("user_id", String(userId)).whereLike("title", "c%").count({ n: "*" });
    assert.equal(Number(stored[0]?.n), 30);
  });
});
