// The change feed's checker: concurrent writers through the API, transactions
// that commit out of the order they began (held open with pg directly while
// later ones commit), watchers through the SDK from a listing's watch_token,
// a kill -9 of the service and a restart of PostgreSQL in the middle. At the
// end every acknowledged write was seen exactly once, each resource's changes
// came in order with no version skipped, the messages' positions only ever
// grew, and the state rebuilt from the listing and the watch equals the table.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { ChangeType, createBlogClient } from "../src/client/index.js";
import type { BlogClient, Post, PostChange, User, UserChange } from "../src/client/index.js";
import { comparePositions, tokenPosition } from "../src/db/change-position.js";
import { until } from "./poll.js";
import { freePort, ownedTempDir, postgresBin, removeClusters, runAs, startPrimary } from "./postgres-cluster.js";
import type { Cluster, RunAs } from "./postgres-cluster.js";
import { startServiceProcess } from "./service-process.js";
import type { ServiceProcess } from "./service-process.js";
import { Recorder } from "./watch-recorder.js";

const bin = postgresBin();
const missing =
  bin === undefined ? "needs PostgreSQL's server binaries (initdb, pg_ctl) under /usr/lib/postgresql" : undefined;
if (missing !== undefined && process.env.REQUIRE_POSTGRES_BINARIES) throw new Error(missing);

let as: RunAs;
let root: string;
let primary: Cluster;
let service: ServiceProcess | undefined;
let address: string;
let sdk: BlogClient;
const stop = new AbortController();
/** writing keeps the writers going; the test (or its end, if it fails) turns it off. */
let writing = true;

async function startService(): Promise<ServiceProcess> {
  return startServiceProcess({
    DATABASE_URL: primary.url("blog"),
    GRPC_ADDRESS: address,
    WATCH_POLL_INTERVAL_MS: "250",
  });
}

before(async () => {
  if (bin === undefined) return;
  as = runAs();
  root = ownedTempDir("blog-watch-checker-", as);
  primary = await startPrimary(bin, as, root);
  await primary.query("CREATE DATABASE blog");
  address = `127.0.0.1:${await freePort()}`;
  service = await startService();
  sdk = createBlogClient(address, { retry: false });
});

after(async () => {
  writing = false;
  stop.abort();
  sdk?.close();
  service?.kill();
  await service?.exited;
  if (bin !== undefined && root !== undefined) await removeClusters(bin, as, root, [primary]);
});

/** Acked is a write the service (or PostgreSQL, for the held transactions) confirmed: what, and the version it made. */
type Acked = { key: string; version: bigint } | { key: string; deleted: true };

const versionOf = (etag: string) => BigInt(etag.slice(1));

it(
  "every acknowledged write is seen once, in order per resource, across kill -9 and a PostgreSQL restart",
  { skip: missing },
  async (t) => {
    const acked: Acked[] = [];
    const ack = (key: string, resource: User | Post | undefined) =>
      resource !== undefined && acked.push({ key: `${key}/${resource.id}`, version: versionOf(resource.etag) });
    const userIds: bigint[] = [];
    for (let n = 0; n < 6; n++) {
      const { user } = await sdk.users.createUser({ user: { name: `seed ${n}`, age: n } });
      ack("user", user);
      userIds.push(user!.id);
    }

    // Writers: updates, creates and deletes of users and posts, until told to stop.
    let attempts = 0;
    const pick = <T>(items: T[], n: number) => items[n % items.length]!;
    const postIds: bigint[] = [];
    const failures = new Map<string, number>();
    const writer = async (w: number) => {
      for (let n = 0; writing; n++) {
        attempts++;
        try {
          const op = (w * 13 + n) % 10;
          if (op < 3) {
            const { user } = await sdk.users.updateUser({
              user: { id: pick(userIds, n + w), age: n % 150 },
              updateMask: { paths: ["age"] },
            });
            ack("user", user);
          } else if (op < 6) {
            const { post } = await sdk.posts.createPost({ post: { userId: pick(userIds, n), title: `w${w} n${n}` } });
            ack("post", post);
            postIds.push(post!.id);
          } else if (op < 8 && postIds.length > 0) {
            const { post } = await sdk.posts.updatePost({
              post: { id: pick(postIds, n * 7), title: `edit ${w}/${n}` },
              updateMask: { paths: ["title"] },
            });
            ack("post", post);
          } else if (op === 8 && postIds.length > 0) {
            const id = pick(postIds, n * 3);
            await sdk.posts.deletePost({ id });
            acked.push({ key: `post/${id}`, deleted: true });
            postIds.splice(postIds.indexOf(id), 1);
          } else if (n % 20 === 9) {
            // A new user comes, and one with posts goes: the posts' deletions cascade.
            const { user } = await sdk.users.createUser({ user: { name: `w${w} n${n}`, age: 1 } });
            ack("user", user);
            userIds.push(user!.id);
            if (userIds.length > 3) {
              const id = userIds.shift()!;
              await sdk.users.deleteUser({ id }).catch((error: { code?: number }) => {
                if (error.code !== 5) userIds.push(id); // not NOT_FOUND: it may still be there
                throw error;
              });
              acked.push({ key: `user/${id}`, deleted: true });
            }
          }
        } catch (error) {
          // Not acknowledged (the service or the database is down, a row went away): may or may not have happened.
          const code = String((error as { code?: unknown }).code);
          failures.set(code, (failures.get(code) ?? 0) + 1);
          await delay(20); // a service that is down fails calls at once: pace the retries
        }
      }
    };

    // Held transactions: take a transaction id and a row lock first, let later writers commit, commit last.
    let heldCommits = 0;
    const held = async () => {
      for (let n = 0; writing; n++) {
        const client = new pg.Client({ connectionString: primary.url("blog") });
        client.on("error", () => {});
        try {
          await client.connect();
          await client.query("BEGIN");
          const first = pick(userIds, n);
          const a = await client.query<{ version: string }>(
            "UPDATE users SET age = 100, version = version + 1 WHERE id = $1 RETURNING version::text",
            [String(first)],
          );
          const before = attempts;
          await until("later writers ran", () => attempts >= before + 20 || !writing, { timeoutMs: 60_000 });
          const second = pick(userIds, n + 1);
          const b = await client.query<{ version: string }>(
            "UPDATE users SET age = 101, version = version + 1 WHERE id = $1 RETURNING version::text",
            [String(second)],
          );
          await client.query("COMMIT");
          heldCommits++;
          for (const [id, r] of [
            [first, a],
            [second, b],
          ] as const)
            if (r.rows[0] !== undefined) acked.push({ key: `user/${id}`, version: BigInt(r.rows[0].version) });
        } catch {
          // The database restarted under it: not acknowledged.
        } finally {
          await client.end().catch(() => {});
        }
      }
    };

    const writers = [0, 1, 2, 3].map(writer);
    const holder = held();
    await until("writes are under way", () => acked.length >= 40, { timeoutMs: 60_000 });

    // List during the writes, then watch from the listings' tokens (through the SDK, which resumes by itself).
    const userList = await sdk.users.listUsers({ pageSize: 1000 });
    const postList = await sdk.posts.listPosts({ pageSize: 1000 });
    assert.equal(userList.nextPageToken, "");
    assert.equal(postList.nextPageToken, "");
    const users = new Recorder<UserChange>(
      sdk.users.watchUsers({ resumeToken: userList.watchToken }, { signal: stop.signal }),
    );
    const posts = new Recorder<PostChange>(
      sdk.posts.watchPosts({ resumeToken: postList.watchToken }, { signal: stop.signal }),
    );
    await users.started();
    await posts.started();

    const progress = async (what: string) => {
      const target = acked.length + 100;
      await until(what, () => acked.length >= target, { timeoutMs: 120_000 }).catch((error: Error) => {
        throw new Error(`${error.message}; failed writes by code: ${JSON.stringify([...failures])}`);
      });
    };
    await progress("writes before the kill");
    service!.kill();
    await service!.exited;
    service = await startService();
    await progress("writes after the restart of the service");
    await primary.stop();
    await primary.start();
    await progress("writes after the restart of PostgreSQL");

    writing = false;
    await Promise.all([...writers, holder]);
    const { user: marker } = await sdk.users.createUser({ user: { name: "marker", age: 1 } });
    const { post: markerPost } = await sdk.posts.createPost({ post: { userId: marker!.id, title: "marker" } });
    ack("user", marker);
    ack("post", markerPost);
    await users.sees("the marker user", (c) => c.user?.id === marker!.id, 120_000);
    await posts.sees("the marker post", (c) => c.post?.id === markerPost!.id, 120_000);

    const check = <R extends User | Post>(
      kind: string,
      listed: R[],
      recorder: Recorder<unknown>,
      changes: { type: ChangeType; resource: R }[],
      table: Map<string, R>,
    ) => {
      // Positions only grow: no message ever goes back behind one before it.
      const positions = recorder.messages.map((m) => tokenPosition(m.resumeToken)!);
      positions.forEach(
        (p, i) => i === 0 || assert.ok(comparePositions(positions[i - 1]!, p) <= 0, `${kind} position went back`),
      );
      // Per resource: versions follow each other one by one from the listing's, a deletion is last.
      const state = new Map<string, R>(listed.map((r) => [`${kind}/${r.id}`, r]));
      const last = new Map<string, bigint | "deleted">(listed.map((r) => [`${kind}/${r.id}`, versionOf(r.etag)]));
      const seen = new Set<string>();
      for (const { type, resource } of changes) {
        const key = `${kind}/${resource.id}`;
        const before = last.get(key);
        assert.notEqual(before, "deleted", `${key} changed after its deletion`);
        if (type === ChangeType.DELETED) {
          last.set(key, "deleted");
          state.delete(key);
          seen.add(`${key}/deleted`);
          continue;
        }
        const version = versionOf(resource.etag);
        assert.equal(type, version === 1n ? ChangeType.CREATED : ChangeType.UPDATED, `${key} v${version}`);
        assert.equal(
          version,
          (before === undefined ? 0n : (before as bigint)) + 1n,
          `${key}: v${version} after v${before}: a change skipped, repeated or out of order`,
        );
        last.set(key, version);
        state.set(key, resource);
        seen.add(`${key}/${version}`);
      }
      // Every acknowledged write is there (or was already in the listing).
      for (const write of acked.filter((w) => w.key.startsWith(`${kind}/`))) {
        const listedVersion = last.get(write.key);
        const name = "deleted" in write ? `${write.key}/deleted` : `${write.key}/${write.version}`;
        const inListing =
          "version" in write &&
          listed.some((r) => `${kind}/${r.id}` === write.key && versionOf(r.etag) >= write.version);
        assert.ok(seen.has(name) || inListing || listedVersion === undefined, `acknowledged ${name} never seen`);
      }
      assert.deepEqual(
        [...state.keys()].sort(),
        [...table.keys()].sort(),
        `${kind}: the rebuilt ids differ from the table`,
      );
      for (const [key, row] of table) assert.deepEqual(state.get(key), row, `${key} differs from the table`);
      return changes.length;
    };
    const userTable = new Map<string, User>();
    for await (const m of sdk.users.exportUsers({})) for (const u of m.users) userTable.set(`user/${u.id}`, u);
    const postTable = new Map<string, Post>();
    for await (const m of sdk.posts.exportPosts({})) for (const p of m.posts) postTable.set(`post/${p.id}`, p);
    const userChanges = check(
      "user",
      userList.users,
      users,
      users.changes.map((c) => ({ type: c.type, resource: c.user! })),
      userTable,
    );
    const postChanges = check(
      "post",
      postList.posts,
      posts,
      posts.changes.map((c) => ({ type: c.type, resource: c.post! })),
      postTable,
    );
    assert.ok(userChanges > 30 && postChanges > 100, `${userChanges} user and ${postChanges} post changes`);
    assert.ok(acked.length > 300);
    assert.ok(heldCommits >= 3, `${heldCommits} transactions committed after later ones`);
    t.diagnostic(
      `${acked.length} acknowledged writes, ${heldCommits} held transactions, ` +
        `${userChanges} user and ${postChanges} post changes checked, failed writes by code ${JSON.stringify([...failures])}`,
    );
  },
);
