import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import pg from "pg";
import { countStatements, distinctStatements, grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(() => env.close());

async function newUser(name = "Ada", age = 36) {
  const { user } = await env.users.createUser({ user: { name, age } });
  assert.ok(user);
  return user;
}

describe("CreateUser", () => {
  it("stores a user and returns it with a server id and times", async () => {
    const before = Date.now();
    const user = await newUser("  Grace Hopper  ", 85);
    assert.ok(user.id > 0n);
    assert.equal(user.name, "Grace Hopper", "the name is stored trimmed");
    assert.equal(user.age, 85);
    assert.deepEqual(user.posts, []);
    assert.ok(user.createTime && user.updateTime);
    assert.ok(Number(user.createTime.seconds) * 1000 >= before - 60_000);
    const row = await env.db("users").where("id", String(user.id)).first();
    assert.equal(row.name, "Grace Hopper");
  });

  it("ignores a client-chosen id", async () => {
    const { user } = await env.users.createUser({ user: { id: 999_999n, name: "Linus", age: 50 } });
    assert.notEqual(user?.id, 999_999n);
  });

  const invalid: [string, object, RegExp][] = [
    ["a missing user", {}, /^user: value is required$/],
    [
      "an empty name",
      { user: { name: "", age: 1 } },
      /^user\.name: must be 1 to 200 characters after trimming white space$/,
    ],
    ["a blank name", { user: { name: " \t ", age: 1 } }, /^user\.name: must be 1 to 200/],
    ["a 201-character name", { user: { name: "x".repeat(201), age: 1 } }, /^user\.name: must be 1 to 200/],
    [
      "a negative age",
      { user: { name: "A", age: -1 } },
      /^user\.age: must be greater than or equal to 0 and less than or equal to 150$/,
    ],
    ["an age of 151", { user: { name: "A", age: 151 } }, /^user\.age: must be greater than or equal to 0/],
    ["every bad field at once", { user: { name: "", age: 200 } }, /^user\.name: .*; user\.age: /],
  ];
  for (const [what, request, message] of invalid) {
    it(`rejects ${what} with INVALID_ARGUMENT naming the field`, async () => {
      const countBefore = (await env.users.countUsers({})).count;
      const error = await grpcError(env.users.createUser(request));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.match(error.details, message);
      assert.equal((await env.users.countUsers({})).count, countBefore, "nothing was stored");
    });
  }

  it("accepts the boundaries: 200 characters after trimming, ages 0 and 150", async () => {
    assert.equal((await newUser(` ${"y".repeat(200)} `, 0)).name.length, 200);
    assert.equal((await newUser("Old", 150)).age, 150);
  });
});

describe("GetUser", () => {
  it("returns the user without posts in the BASIC and unspecified views", async () => {
    const user = await newUser();
    await env.posts.createPost({ post: { userId: user.id, title: "Hello" } });
    for (const view of [UserView.UNSPECIFIED, UserView.BASIC]) {
      const got = await env.users.getUser({ id: user.id, view });
      assert.equal(got.user?.name, "Ada");
      assert.deepEqual(got.user?.posts, []);
    }
  });

  it("eager-loads posts oldest first in the FULL view, in exactly two statements", async () => {
    const user = await newUser();
    const titles = ["first", "second", "third"];
    for (const title of titles) await env.posts.createPost({ post: { userId: user.id, title, content: `${title}!` } });
    let got: Awaited<ReturnType<typeof env.users.getUser>> | undefined;
    const statements = await countStatements(env.db, async () => {
      got = await env.users.getUser({ id: user.id, view: UserView.FULL });
    });
    assert.deepEqual(
      got?.user?.posts.map((p) => [p.title, p.content, p.userId]),
      titles.map((t) => [t, `${t}!`, user.id]),
    );
    assert.equal(statements.length, 2, statements.join("\n"));
    assert.match(statements[0] ?? "", /from "users"/);
    assert.match(statements[1] ?? "", /from "posts"/);
  });

  it("answers NOT_FOUND naming the id", async () => {
    const error = await grpcError(env.users.getUser({ id: 424_242n }));
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.details, "user 424242 not found");
  });

  it("rejects ids below 1 and unknown views", async () => {
    const zero = await grpcError(env.users.getUser({ id: 0n }));
    assert.equal(zero.code, status.INVALID_ARGUMENT);
    assert.equal(zero.details, "id: must be greater than 0");
    const view = await grpcError(env.users.getUser({ id: 1n, view: 7 as UserView }));
    assert.equal(view.code, status.INVALID_ARGUMENT);
    assert.equal(view.details, "view: value must be one of the defined enum values");
  });
});

describe("UpdateUser", () => {
  it("changes only the fields in update_mask (the demo's age update)", async () => {
    const user = await newUser("Ada", 36);
    const { user: updated } = await env.users.updateUser({
      user: { id: user.id, age: 37 },
      updateMask: { paths: ["age"] },
    });
    assert.equal(updated?.age, 37);
    assert.equal(updated?.name, "Ada", "a field outside the mask keeps its value");
    assert.ok(updated?.updateTime && user.updateTime);
    assert.ok(updated.updateTime.seconds >= user.updateTime.seconds);
  });

  it("can set a field to its default value when the mask names it", async () => {
    const user = await newUser("Zero", 40);
    const { user: updated } = await env.users.updateUser({ user: { id: user.id }, updateMask: { paths: ["age"] } });
    assert.equal(updated?.age, 0);
  });

  it("without a mask changes every field given a non-default value", async () => {
    const user = await newUser("Before", 20);
    const { user: renamed } = await env.users.updateUser({ user: { id: user.id, name: " After " } });
    assert.equal(renamed?.name, "After");
    assert.equal(renamed?.age, 20, "age 0 is the default, so it is not changed");
  });

  it("rejects an unknown mask path, naming the allowed ones, and changes nothing", async () => {
    const user = await newUser("Keep", 30);
    const error = await grpcError(
      env.users.updateUser({
        user: { id: user.id, name: "Changed", age: 31 },
        updateMask: { paths: ["age", "email"] },
      }),
    );
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, 'update_mask: paths must be "name" or "age"');
    const { user: after } = await env.users.getUser({ id: user.id });
    assert.equal(after?.age, 30);
    assert.equal(after?.name, "Keep");
  });

  it("validates only the masked fields", async () => {
    const user = await newUser("Valid", 30);
    const error = await grpcError(
      env.users.updateUser({ user: { id: user.id, age: 151 }, updateMask: { paths: ["age"] } }),
    );
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.match(error.details, /^user\.age: /);
    const name = await grpcError(
      env.users.updateUser({ user: { id: user.id, name: "  " }, updateMask: { paths: ["name"] } }),
    );
    assert.match(name.details, /^user\.name: must be 1 to 200/);
  });

  it("answers NOT_FOUND for a missing user and INVALID_ARGUMENT without an id", async () => {
    const missing = await grpcError(
      env.users.updateUser({ user: { id: 777_777n, age: 1 }, updateMask: { paths: ["age"] } }),
    );
    assert.equal(missing.code, status.NOT_FOUND);
    assert.equal(missing.details, "user 777777 not found");
    const noId = await grpcError(env.users.updateUser({ user: { age: 1 }, updateMask: { paths: ["age"] } }));
    assert.equal(noId.code, status.INVALID_ARGUMENT);
    assert.equal(noId.details, "user: id must be greater than 0 to pick the user to update");
  });
});

describe("DeleteUser", () => {
  it("deletes the user and, by cascade, their posts", async () => {
    const user = await newUser();
    const { post } = await env.posts.createPost({ post: { userId: user.id, title: "Doomed" } });
    const other = await newUser("Other");
    const { post: kept } = await env.posts.createPost({ post: { userId: other.id, title: "Kept" } });
    await env.users.deleteUser({ id: user.id });
    assert.equal((await grpcError(env.users.getUser({ id: user.id }))).code, status.NOT_FOUND);
    const postError = await grpcError(env.posts.getPost({ id: post!.id }));
    assert.equal(postError.code, status.NOT_FOUND);
    assert.equal(postError.details, `post ${post!.id} not found`);
    assert.equal((await env.posts.getPost({ id: kept!.id })).post?.title, "Kept", "other users' posts stay");
  });

  it("answers NOT_FOUND for a missing or already deleted user", async () => {
    const user = await newUser();
    await env.users.deleteUser({ id: user.id });
    const error = await grpcError(env.users.deleteUser({ id: user.id }));
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.details, `user ${user.id} not found`);
  });
});

describe("CountUsers", () => {
  it("counts with raw SQL and follows creates and deletes", async () => {
    const start = (await env.users.countUsers({})).count;
    assert.equal(start, BigInt((await env.db("users").count({ n: "*" }).first())?.n ?? -1));
    const a = await newUser("A");
    await newUser("B");
    assert.equal((await env.users.countUsers({})).count, start + 2n);
    await env.users.deleteUser({ id: a.id });
    const statements = await countStatements(env.db, async () => {
      assert.equal((await env.users.countUsers({})).count, start + 1n);
    });
    assert.deepEqual(statements, ["SELECT COUNT(*) AS count FROM users"]);
  });
});

describe("database errors", () => {
  it("reach the caller through the central mapping, without SQL or driver text", async () => {
    // Validation mirrors every constraint of the schema, so the test adds one it cannot see.
    await env.db.raw("ALTER TABLE users ADD CONSTRAINT users_test_check CHECK (name <> 'Refused') NOT VALID");
    try {
      const error = await grpcError(env.users.createUser({ user: { name: "Refused", age: 1 } }));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.equal(error.details, "the request violates a check constraint (constraint users_test_check)");
    } finally {
      await env.db.raw("ALTER TABLE users DROP CONSTRAINT users_test_check");
    }
  });
});

describe("concurrent reads", () => {
  it("share statements: 50 concurrent GetUser FULL calls issue far fewer than 100 statements, each answered right", async () => {
    const created = await Promise.all(Array.from({ length: 50 }, (_, i) => newUser(`Batch ${i}`, i)));
    await Promise.all(created.map((u) => env.posts.createPost({ post: { userId: u.id, title: `of ${u.name}` } })));
    let answers: Awaited<ReturnType<typeof env.users.getUser>>[] = [];
    const statements = await countStatements(env.db, async () => {
      answers = await Promise.all(created.map((u) => env.users.getUser({ id: u.id, view: UserView.FULL })));
    });
    answers.forEach((answer, i) => {
      assert.equal(answer.user?.name, `Batch ${i}`);
      assert.deepEqual(
        answer.user?.posts.map((p) => p.title),
        [`of Batch ${i}`],
      );
    });
    assert.ok(statements.length < 50, `${statements.length} statements`);
    assert.equal(statements.length % 2, 0, "each batch is one users and one posts statement");
  });

  it("of one user by two callers share a statement that one caller's deadline does not cancel", async () => {
    const user = await newUser("Shared");
    const lock = new pg.Client({ connectionString: env.db.client.config.connection.connectionString });
    await lock.connect();
    try {
      // The shared SELECT waits on the lock past the first caller's deadline.
      await lock.query("BEGIN");
      await lock.query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
      const statements = await countStatements(env.db, async () => {
        const hasty = grpcError(env.users.getUser({ id: user.id }, { deadline: Date.now() + 500 }));
        const patient = env.users.getUser({ id: user.id });
        assert.equal((await hasty).code, status.DEADLINE_EXCEEDED);
        await lock.query("COMMIT");
        assert.equal((await patient).user?.name, "Shared");
      });
      assert.equal(
        statements.filter((sql) => /from "users"/.test(sql)).length,
        1,
        "the two reads shared one statement",
      );
    } finally {
      await lock.end();
    }
  });

  it("read a batch of any size with one statement text, so one prepared statement serves every size", async () => {
    const created = await Promise.all(Array.from({ length: 12 }, (_, i) => newUser(`Sized ${i}`, i)));
    const { texts, counts } = await distinctStatements(
      env.db,
      [1, 2, 5, 12].map((size) => async () => {
        const users = created.slice(0, size);
        const answers = await Promise.all(users.map((u) => env.users.getUser({ id: u.id })));
        assert.deepEqual(
          answers.map((a) => a.user?.name),
          users.map((u) => u.name),
        );
      }),
    );
    assert.equal(texts.length, 1, texts.join("\n"));
    // One text is also what a statement per call would send: the 12 concurrent calls must have shared statements.
    assert.ok(counts[3]! < 12, `12 concurrent GetUser calls took ${counts[3]} statements: they were not batched`);
  });
});
