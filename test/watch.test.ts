// WatchUsers and WatchPosts end to end: a real server on a socket, a real
// PostgreSQL, writes through the API and through SQL directly.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { ChangeType } from "../gen/blog/v1/change_pb.js";
import type { PostChange } from "../gen/blog/v1/post_service_pb.js";
import type { UserChange } from "../gen/blog/v1/user_service_pb.js";
import { pruneChanges } from "../src/db/change-retention.js";
import { connectionSettingsOf } from "../src/db/knex-internals.js";
import { pino } from "pino";
import { createBlogClient } from "../src/client/index.js";
import { createServer } from "../src/server.js";
import { grpcError, startTestEnv } from "./helpers.js";
import { until } from "./poll.js";
import { freePort } from "./postgres-cluster.js";
import type { TestEnv } from "./helpers.js";
import { Recorder } from "./watch-recorder.js";

let env: TestEnv;
const stops: AbortController[] = [];
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  for (const stop of stops) stop.abort();
  await env.close();
});

/** watchUsers starts a recorded WatchUsers that the file's end cancels. */
async function watchUsers(resumeToken = ""): Promise<Recorder<UserChange>> {
  const stop = new AbortController();
  stops.push(stop);
  const recorder = new Recorder(env.users.watchUsers({ resumeToken }, { signal: stop.signal }));
  await recorder.started();
  return recorder;
}

async function watchPosts(resumeToken = "", userId = 0n): Promise<Recorder<PostChange>> {
  const stop = new AbortController();
  stops.push(stop);
  const recorder = new Recorder(env.posts.watchPosts({ resumeToken, userId }, { signal: stop.signal }));
  await recorder.started();
  return recorder;
}

const of = (id: bigint) => (c: UserChange) => c.user?.id === id;

it("starts with a heartbeat: no changes, a resume token", async () => {
  const watch = await watchUsers();
  assert.deepEqual(watch.messages[0]?.changes, []);
  assert.notEqual(watch.messages[0]?.resumeToken, "");
});

it("sends every create, update and delete of a user once, as committed", async () => {
  const watch = await watchUsers();
  const { user } = await env.users.createUser({ user: { name: "Ada", age: 36 } });
  const { user: updated } = await env.users.updateUser({
    user: { id: user!.id, age: 37 },
    updateMask: { paths: ["age"] },
  });
  await env.users.deleteUser({ id: user!.id });
  await watch.sees("the deletion", (c) => c.user?.id === user!.id && c.type === ChangeType.DELETED);
  const seen = watch.changes.filter(of(user!.id));
  assert.deepEqual(
    seen.map((c) => [c.type, c.user?.name, c.user?.age, c.user?.etag]),
    [
      [ChangeType.CREATED, "Ada", 36, user!.etag],
      [ChangeType.UPDATED, "Ada", 37, updated!.etag],
      [ChangeType.DELETED, "", 0, ""],
    ],
  );
  assert.deepEqual(seen[0]!.user, user);
  assert.deepEqual(seen[1]!.user, updated);
  assert.ok(seen.every((c) => c.commitTime !== undefined));
});

it("sends nothing of a rolled-back transaction", async () => {
  const watch = await watchUsers();
  await env.db
    .transaction(async (trx) => {
      await trx("users").insert({ name: "Ghost", age: 1 });
      throw new Error("roll back");
    })
    .catch(() => {});
  const { user } = await env.users.createUser({ user: { name: "After the ghost", age: 2 } });
  await watch.sees("the create after the rollback", of(user!.id));
  assert.deepEqual(
    watch.changes.map((c) => c.user?.name),
    ["After the ghost"],
  );
});

it("sends a post deletion for each post a user deletion cascades to; WatchPosts user_id filters", async () => {
  const { user } = await env.users.createUser({ user: { name: "Author", age: 40 } });
  const { user: other } = await env.users.createUser({ user: { name: "Other", age: 41 } });
  const all = await watchPosts();
  const mine = await watchPosts("", user!.id);
  const created = await env.posts.batchCreatePosts({
    userId: user!.id,
    requests: [1, 2, 3].map((n) => ({ post: { userId: user!.id, title: `t${n}` } })),
  });
  await env.posts.createPost({ post: { userId: other!.id, title: "not mine" } });
  await env.users.deleteUser({ id: user!.id });
  const ids = created.posts.map((p) => p.id);
  await mine.sees("the cascaded deletions", (c) => c.type === ChangeType.DELETED && c.post?.id === ids[2]);
  assert.deepEqual(
    mine.changes.map((c) => [c.type, c.post?.id, c.post?.userId]),
    [...ids.map((id) => [ChangeType.CREATED, id, user!.id]), ...ids.map((id) => [ChangeType.DELETED, id, user!.id])],
  );
  await all.sees("the cascaded deletions", (c) => c.type === ChangeType.DELETED && c.post?.id === ids[2]);
  assert.equal(all.changes.filter((c) => c.post?.userId === other!.id).length, 1);
});

it("keeps each row's changes in commit order when transactions commit out of the order they began", async () => {
  const { user: row } = await env.users.createUser({ user: { name: "Contended", age: 1 } });
  const { user: other } = await env.users.createUser({ user: { name: "Early", age: 1 } });
  const watch = await watchUsers();
  const early = new pg.Client(connectionSettingsOf(env.db));
  await early.connect();
  try {
    // The early transaction takes its transaction id first (it writes another row),
    await early.query("BEGIN");
    await early.query("UPDATE users SET age = 2, version = version + 1 WHERE id = $1", [String(other!.id)]);
    // a later one updates the contended row and commits while the early one is open,
    await env.users.updateUser({ user: { id: row!.id, age: 2 }, updateMask: { paths: ["age"] } });
    // then the early one updates the same row after it and commits last.
    await early.query("UPDATE users SET age = 3, version = version + 1 WHERE id = $1", [String(row!.id)]);
    await early.query("COMMIT");
  } finally {
    await early.end();
  }
  await watch.sees("the early transaction's update", (c) => c.user?.id === row!.id && c.user.age === 3);
  assert.deepEqual(
    watch.changes.filter(of(row!.id)).map((c) => [c.user?.age, c.user?.etag]),
    [
      [2, "v2"],
      [3, "v3"],
    ],
  );
  assert.deepEqual(
    watch.changes.map((c) => c.user?.name),
    ["Contended", "Early", "Contended"],
  );
});

it("resumes from a resume token with nothing lost or repeated", async () => {
  const first = await watchUsers();
  const { user: a } = await env.users.createUser({ user: { name: "Before", age: 1 } });
  await first.sees("the first create", of(a!.id));
  const token = first.messages.find((m) => m.changes.some(of(a!.id)))!.resumeToken;
  const { user: b } = await env.users.createUser({ user: { name: "After", age: 1 } });
  const resumed = await watchUsers(token);
  await resumed.sees("the second create", of(b!.id));
  assert.deepEqual(
    resumed.changes.map((c) => c.user?.name),
    ["After"],
  );
});

it("a listing and a watch from its watch_token reproduce the table while writers run", async () => {
  const seed = await Promise.all(
    Array.from({ length: 20 }, (_, n) => env.users.createUser({ user: { name: `seed ${n}`, age: n } })),
  );
  let writing = true;
  let writes = 0;
  const writer = async (w: number) => {
    for (let n = 0; writing; n++, writes++) {
      const target = seed[(w * 7 + n) % seed.length]!.user!.id;
      await env.users
        .updateUser({ user: { id: target, age: n % 150 }, updateMask: { paths: ["age"] } })
        .catch(() => {});
      if (n % 5 === 0) await env.users.createUser({ user: { name: `w${w}-${n}`, age: 1 } });
      if (n % 9 === 0) await env.users.deleteUser({ id: target }).catch(() => {});
    }
  };
  const writers = [0, 1, 2].map(writer);
  await until("the writers are under way", () => writes >= 30);
  const listing = await env.users.listUsers({ pageSize: 1000 });
  assert.equal(listing.nextPageToken, "");
  const watch = await watchUsers(listing.watchToken);
  const listed = writes;
  await until("the writers wrote more after the listing", () => writes >= listed + 30);
  writing = false;
  await Promise.all(writers);
  const { user: marker } = await env.users.createUser({ user: { name: "marker", age: 1 } });
  await watch.sees("the marker", of(marker!.id));

  const state = new Map(listing.users.map((u) => [u.id, u]));
  for (const change of watch.changes) {
    if (change.type === ChangeType.DELETED) state.delete(change.user!.id);
    else state.set(change.user!.id, change.user!);
  }
  // Nothing the listing showed came again (same id and etag).
  const shown = new Set(listing.users.map((u) => `${u.id}/${u.etag}`));
  assert.ok(watch.changes.every((c) => !shown.has(`${c.user?.id}/${c.user?.etag}`)));
  const table = (await env.users.listUsers({ pageSize: 1000 })).users;
  assert.deepEqual(
    [...state.values()].sort((x, y) => Number(x.id - y.id)),
    table,
  );
});

it("an empty listing's watch_token delivers what comes after it and nothing before", async () => {
  const { user: before } = await env.users.createUser({ user: { name: "before empty list", age: 1 } });
  await env.posts.createPost({ post: { userId: before!.id, title: "before", content: "" } });
  const users = await env.users.listUsers({ filter: `id > ${before!.id}` });
  const posts = await env.posts.listPosts({ userId: before!.id, filter: `id < 0` });
  assert.deepEqual([users.users, posts.posts], [[], []]);
  const userWatch = await watchUsers(users.watchToken);
  const postWatch = await watchPosts(posts.watchToken, before!.id);
  const { user: after } = await env.users.createUser({ user: { name: "after empty list", age: 1 } });
  const { post } = await env.posts.createPost({ post: { userId: before!.id, title: "after", content: "" } });
  await userWatch.sees("the create after the listing", of(after!.id));
  await postWatch.sees("the post after the listing", (c) => c.post?.id === post!.id);
  assert.deepEqual(
    userWatch.changes.map((c) => c.user?.name),
    ["after empty list"],
  );
  assert.deepEqual(
    postWatch.changes.map((c) => c.post?.title),
    ["after"],
  );
});

it("answers a resume token older than the retention with OUT_OF_RANGE, reason RESUME_TOKEN_EXPIRED", async () => {
  const old = (await env.users.listUsers({ pageSize: 1 })).watchToken;
  await env.users.createUser({ user: { name: "Pruned", age: 1 } });
  assert.ok((await pruneChanges(env.db, 0)) > 0);
  const error = await grpcError(
    (async () => {
      for await (const _ of env.users.watchUsers({ resumeToken: old })) void _;
    })(),
  );
  assert.equal(error.code, status.OUT_OF_RANGE);
  assert.equal(
    error.details,
    "resume_token: is older than the change feed's retention; list again and watch from the list's watch_token",
  );
  // A fresh listing's token is good again.
  const fresh = await watchUsers((await env.users.listUsers({ pageSize: 1 })).watchToken);
  assert.equal(fresh.error, undefined);
});

it("answers a token past the end of the feed with OUT_OF_RANGE, reason RESUME_TOKEN_AHEAD", async () => {
  const ahead = Buffer.from("c1.999999999.0").toString("base64url");
  const error = await grpcError(
    (async () => {
      for await (const _ of env.users.watchUsers({ resumeToken: ahead })) void _;
    })(),
  );
  assert.equal(error.code, status.OUT_OF_RANGE);
  assert.match(error.details, /^resume_token: is past the end of this database's change feed/);
});

it("answers a token it did not issue with INVALID_ARGUMENT, reason INVALID_RESUME_TOKEN", async () => {
  const error = await grpcError(
    (async () => {
      for await (const _ of env.posts.watchPosts({ resumeToken: "bm90IGEgdG9rZW4" })) void _;
    })(),
  );
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.match(error.details, /^resume_token: is not a token this service issued/);
});

it("the SDK's watch resumes by itself across a server shutdown, with nothing lost or repeated", async () => {
  const address = `127.0.0.1:${await freePort()}`;
  const log = pino({ level: "silent" });
  const first = createServer({ db: env.db, log });
  await first.listen(address);
  const client = createBlogClient(address);
  const stop = new AbortController();
  stops.push(stop);
  const watch = new Recorder(client.users.watchUsers({}, { signal: stop.signal }));
  await watch.started();
  const { user: a } = await env.users.createUser({ user: { name: "Before the shutdown", age: 1 } });
  await watch.sees("the first create", of(a!.id));
  await first.shutdown(5_000); // ends the watch: UNAVAILABLE, SERVER_SHUTTING_DOWN
  const { user: b } = await env.users.createUser({ user: { name: "While no server listens", age: 1 } });
  const second = createServer({ db: env.db, log });
  await second.listen(address);
  try {
    await watch.sees("the create made while the server was down", of(b!.id));
    assert.deepEqual(
      watch.changes.map((c) => c.user?.name),
      ["Before the shutdown", "While no server listens"],
    );
  } finally {
    stop.abort();
    client.close();
    await second.shutdown(1_000);
  }
});

/** The data the feed's first triggers wrote (row triggers, 20261204040000_change_feed): every field, numbers as strings. */
const rowTriggerData = (row: string) => `(SELECT jsonb_object_agg(key,
  CASE jsonb_typeof(value) WHEN 'number' THEN to_jsonb(value #>> '{}') ELSE value END) FROM jsonb_each(to_jsonb(${row})))`;

it("writes each change's data as the row triggers did: every field of the row, its numbers as strings", async () => {
  const { user } = await env.users.createUser({ user: { name: "Data", age: 33 } });
  await env.users.updateUser({ user: { id: user!.id, age: 34 }, updateMask: { paths: ["age"] } });
  const { posts } = await env.posts.batchCreatePosts({
    userId: user!.id,
    requests: [1, 2, 3].map((n) => ({ post: { userId: user!.id, title: `d${n}`, content: `c${n}` } })),
  });
  const ids = [user!.id, ...posts.map((p) => p.id)].map(String);
  const { rows } = await env.db.raw<{ rows: { resource: string; operation: string; same: boolean; data: unknown }[] }>(
    `SELECT c.resource, c.operation, c.data = coalesce(${rowTriggerData("u")}, ${rowTriggerData("p")}) AS same, c.data
     FROM changes c LEFT JOIN users u ON c.resource = 'user' AND u.id = c.resource_id
     LEFT JOIN posts p ON c.resource = 'post' AND p.id = c.resource_id
     WHERE c.resource_id = any(?::bigint[]) AND (c.resource = 'post' OR c.operation = 'update')
     ORDER BY c.xid, c.id`,
    [ids],
  );
  assert.deepEqual(
    rows.map((r) => [r.resource, r.operation, r.same]),
    [["user", "update", true], ...posts.map(() => ["post", "insert", true])],
    JSON.stringify(rows.map((r) => r.data)),
  );
});

it("the feed's triggers name every numeric column of users and posts, so each is written as a string", async () => {
  const { rows } = await env.db.raw<{ rows: { table: string; trigger: string; args: string[]; numeric: string[] }[] }>(
    `SELECT t.tgrelid::regclass::text AS table, t.tgname AS trigger,
       (string_to_array(rtrim(encode(t.tgargs, 'escape'), '\\000'), '\\000'))[3:] AS args,
       (SELECT array_agg(column_name::text ORDER BY column_name) FROM information_schema.columns c
        WHERE c.table_schema = current_schema() AND c.table_name = t.tgrelid::regclass::text
          AND c.data_type IN ('smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision')) AS numeric
     FROM pg_trigger t WHERE t.tgrelid IN ('users'::regclass, 'posts'::regclass) AND NOT t.tgisinternal
     ORDER BY 1, 2`,
  );
  assert.deepEqual(
    rows.map((r) => [r.table, r.trigger]),
    ["posts", "users"].flatMap((t) => ["record_deletes", "record_inserts", "record_updates"].map((n) => [t, n])),
  );
  for (const r of rows) assert.deepEqual([...r.args].sort(), r.numeric, `${r.table} ${r.trigger}`);
});
