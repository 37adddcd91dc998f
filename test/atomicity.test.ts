// Multi-row writes are all or nothing: each test makes the LAST statement (or
// row) of a write fail on purpose, with a trigger the validator cannot see,
// and checks that nothing of the write is left behind.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, afterEach, before, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { grpcError, startTestEnv } from "./helpers.js";
import { assertNoLeaks } from "./leaks.js";
import type { TestEnv } from "./helpers.js";

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
  await env.db.raw(`
    CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'refused on purpose' USING ERRCODE = 'check_violation';
    END $$`);
});
after(() => env.close());

const triggers: [string, string][] = [];
/** refuse installs a trigger that fails the statement when `when` holds for a row. */
async function refuse(table: string, timing: string, when: string) {
  const name = `test_refuse_${triggers.length}`;
  await env.db.raw(
    `CREATE TRIGGER ${name} ${timing} ON ${table} FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION test_refuse()`,
  );
  triggers.push([name, table]);
}
afterEach(async () => {
  for (const [name, table] of triggers.splice(0)) await env.db.raw(`DROP TRIGGER ${name} ON ${table}`);
});

const messages: string[] = [];
/** failed expects the call to fail and keeps its message for the leak check. */
async function failed(call: Promise<unknown>) {
  const error = await grpcError(call);
  messages.push(error.details);
  return error;
}

/** snapshot is every row the service owns, to compare before and after a failed write. */
async function snapshot() {
  return {
    users: await env.db("users").orderBy("id"),
    posts: await env.db("posts").orderBy("id"),
    keys: await env.db("idempotency_keys").orderBy("request_id"),
  };
}

async function newUser(name: string) {
  return (await env.users.createUser({ user: { name, age: 30 } })).user!;
}

it("BatchCreatePosts whose last post fails stores none of the batch", async () => {
  const user = await newUser("Batcher");
  await env.posts.createPost({ post: { userId: user.id, title: "Already there" } });
  await refuse("posts", "BEFORE INSERT", "NEW.title = 'the last one'");
  const titles = ["one", "two", "three", "four", "the last one"];
  const before = await snapshot();
  const error = await failed(
    env.posts.batchCreatePosts({
      userId: user.id,
      requests: titles.map((title) => ({ post: { userId: user.id, title } })),
    }),
  );
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.deepEqual(await snapshot(), before);
  // The same batch without the refused title goes through whole.
  const created = await env.posts.batchCreatePosts({
    userId: user.id,
    requests: titles.slice(0, 4).map((title) => ({ post: { userId: user.id, title } })),
  });
  assert.equal(created.posts.length, 4);
});

it("DeleteUser whose cascade fails on the last post deletes neither the user nor any post", async () => {
  const user = await newUser("Cascader");
  for (const title of ["first", "second", "guarded"]) {
    await env.posts.createPost({ post: { userId: user.id, title } });
  }
  await refuse("posts", "BEFORE DELETE", "OLD.title = 'guarded'");
  const before = await snapshot();
  const error = await failed(env.users.deleteUser({ id: user.id }));
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.deepEqual(await snapshot(), before);
  assert.equal((await env.posts.listPosts({ userId: user.id })).posts.length, 3);
});

for (const [method, create] of [
  [
    "CreateUser",
    async (requestId: string) => (await env.users.createUser({ user: { name: "Once", age: 1 }, requestId })).user!.id,
  ],
  [
    "CreatePost",
    async (requestId: string) => {
      const { users } = await env.users.listUsers({ filter: 'name = "Poster"' });
      const userId = users[0]?.id ?? (await newUser("Poster")).id;
      return (await env.posts.createPost({ post: { userId, title: "Once" }, requestId })).post!.id;
    },
  ],
] as const) {
  it(`${method} with a request_id whose last statement fails keeps neither the resource nor the request_id`, async () => {
    await create(randomUUID()); // the user a post needs exists before the snapshot
    const requestId = randomUUID();
    // The idempotent create's last statement records the new id on its key row.
    await refuse("idempotency_keys", "BEFORE UPDATE", "NEW.resource_id IS NOT NULL");
    const before = await snapshot();
    const error = await failed(create(requestId));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.deepEqual(await snapshot(), before);
    // Nothing remembers the failed attempt: the retry creates exactly once.
    for (const [name, table] of triggers.splice(0)) await env.db.raw(`DROP TRIGGER ${name} ON ${table}`);
    const id = await create(requestId);
    assert.equal(await create(requestId), id);
    const after = await snapshot();
    const table = method === "CreateUser" ? after.users : after.posts;
    const old = method === "CreateUser" ? before.users : before.posts;
    assert.equal(table.length, old.length + 1);
  });
}

it("no status message here carries SQL, a stack trace, a file path or a driver message", () => {
  assert.equal(messages.length, 4);
  assertNoLeaks(messages);
});
