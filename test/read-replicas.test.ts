// Read replicas with read-your-writes, against a real primary and hot standby
// (initdb, pg_basebackup -R -X stream) on loopback, and the service as it is
// deployed: `node --import tsx src/main.ts` with DATABASE_REPLICA_URLS.
//
// What proves that a read was served by the standby: replay is paused on the
// standby, a row is written straight to the primary, and a read without a
// write position does not find it (while the primary has it). The standby's
// pg_stat_activity showing the service's queries backs that up.
import { sdkError as rejection } from "./sdk-error.js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, Metadata, credentials, status } from "@grpc/grpc-js";
import { pino } from "pino";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { BlogClientError, createBlogClient } from "../src/client/index.js";
import type { BlogClient } from "../src/client/index.js";
import { loadConfig } from "../src/config.js";
import { openDatabase } from "../src/db/open.js";
import { serviceDefinition } from "../src/grpc/adapter.js";
import { minLsnKey } from "../src/protocol/keys.js";
import { parseLsn } from "../src/protocol/lsn.js";
import { until } from "./poll.js";
import { ownedTempDir, postgresBin, removeClusters, runAs, startPrimary, startStandby } from "./postgres-cluster.js";
import type { Cluster, RunAs } from "./postgres-cluster.js";
import { startServiceProcess } from "./service-process.js";
import type { ServiceProcess } from "./service-process.js";

const bin = postgresBin();
const missing =
  bin === undefined
    ? "needs PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) under /usr/lib/postgresql"
    : undefined;
// CI has them and sets REQUIRE_POSTGRES_BINARIES, so there their absence fails the test.
if (missing !== undefined && process.env.REQUIRE_POSTGRES_BINARIES) throw new Error(missing);

let as: RunAs;
let root: string;
let primary: Cluster;
let standby: Cluster;
let service: ServiceProcess | undefined;
/** sdk reads its own writes (the default); plain sends no write position, so its reads may lag. */
let sdk: BlogClient;
let plain: BlogClient;

before(async () => {
  if (bin === undefined) return;
  as = runAs();
  root = ownedTempDir("blog-read-replicas-", as);
  primary = await startPrimary(bin, as, root);
  standby = await startStandby(bin, as, root, primary);
  await primary.query("CREATE DATABASE blog");
  service = await startServiceProcess({
    DATABASE_URL: primary.url("blog"),
    DATABASE_REPLICA_URLS: standby.url("blog"),
    MIGRATE_ON_START: "1",
  });
  sdk = createBlogClient(service.address);
  plain = createBlogClient(service.address, { readYourWrites: false });
});

after(async () => {
  sdk?.close();
  plain?.close();
  service?.kill();
  await service?.exited;
  if (bin !== undefined && root !== undefined) await removeClusters(bin, as, root, [standby, primary]);
});

async function insertUser(name: string): Promise<bigint> {
  const [row] = await primary.query<{ id: string }>(
    "INSERT INTO users (name, age) VALUES ($1, 1) RETURNING id",
    [name],
    "blog",
  );
  return BigInt(row!.id);
}

/** caughtUp waits until the standby has replayed everything the primary has written so far. */
async function caughtUp(): Promise<void> {
  const [{ lsn }] = (await primary.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")) as [
    { lsn: string },
  ];
  await until("the standby has replayed the primary's WAL", async () => {
    const [row] = await standby.query<{ ok: boolean }>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [lsn]);
    return row?.ok === true;
  });
}

/** whilePaused runs work with WAL replay paused on the standby, so it lags the primary on purpose. */
async function whilePaused(work: () => Promise<void>): Promise<void> {
  await caughtUp();
  await standby.query("SELECT pg_wal_replay_pause()");
  await until("replay is paused", async () => {
    const [row] = await standby.query<{ state: string }>("SELECT pg_get_wal_replay_pause_state() AS state");
    return row?.state === "paused";
  });
  try {
    await work();
  } finally {
    await standby.query("SELECT pg_wal_replay_resume()").catch(() => {});
  }
}

const found = (client: BlogClient, id: bigint) =>
  client.users.getUser({ id }).then(
    () => true,
    (e: unknown) => (e instanceof BlogClientError && e.code === status.NOT_FOUND ? false : Promise.reject(e)),
  );

/** trailersOf makes one raw call and returns the trailers it ended with. */
function trailersOf(address: string, method: "createUser" | "getUser", request: unknown): Promise<Metadata> {
  const client = new Client(address, credentials.createInsecure());
  const def = serviceDefinition(UserService)[method]!;
  return new Promise((resolve, reject) => {
    const call = client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      request,
      new Metadata(),
      {},
      (error) => error && reject(error),
    );
    call.on("status", (s) => {
      client.close();
      resolve(s.metadata);
    });
  });
}

describe("read replicas", { skip: missing }, () => {
  it("serves reads from the standby: it does not see what it has not replayed", async () => {
    const replicated = await insertUser("Replicated");
    await whilePaused(async () => {
      const hidden = await insertUser("Not replayed yet");
      assert.equal((await plain.users.getUser({ id: replicated })).user?.name, "Replicated");
      const error = await rejection(plain.users.getUser({ id: hidden }));
      assert.equal(error.code, status.NOT_FOUND, "the paused standby answered, not the primary");
      const [onStandby] = await standby.query<{ n: string }>("SELECT count(*) AS n FROM users", [], "blog");
      const [onPrimary] = await primary.query<{ n: string }>("SELECT count(*) AS n FROM users", [], "blog");
      assert.equal(BigInt(onPrimary!.n), BigInt(onStandby!.n) + 1n);
      assert.equal((await plain.users.countUsers({})).count, BigInt(onStandby!.n), "CountUsers too");
      const listed = await plain.users.listUsers({ pageSize: 1000 });
      assert.ok(!listed.users.some((u) => u.id === hidden), "ListUsers too");
      let exported = 0;
      for await (const batch of plain.users.exportUsers({})) exported += batch.users.length;
      assert.equal(BigInt(exported), BigInt(onStandby!.n), "ExportUsers too");
      const queries = await standby.query<{ query: string }>(
        "SELECT query FROM pg_stat_activity WHERE datname = 'blog' AND application_name = 'blog-service'",
      );
      assert.ok(
        queries.some((q) => /from "users"/i.test(q.query)),
        `the service's connections on the standby ran user queries: ${JSON.stringify(queries)}`,
      );
    });
  });

  it("exports from the standby a chunk at a time, holding nothing there while the client does not read", async () => {
    await primary.query(
      "INSERT INTO users (name, age) SELECT 'bulk ' || g, 1 FROM generate_series(1, 20000) AS g",
      [],
      "blog",
    );
    await caughtUp();
    // The service's sessions on the standby whose last statement was an export chunk, and their states.
    const chunkSessions = async () =>
      standby.query(
        "SELECT state FROM pg_stat_activity WHERE datname = 'blog' AND application_name = 'blog-service' AND query LIKE 'select \"users\".*%limit%'",
      );
    const controller = new AbortController();
    const iterator = plain.users.exportUsers({}, { signal: controller.signal })[Symbol.asyncIterator]();
    try {
      assert.equal((await iterator.next()).value?.users.length, 500);
      await until("the export's chunks ran on the standby, and none is running", async () => {
        const sessions = await chunkSessions();
        return sessions.length > 0 && sessions.every((r) => (r as { state: string }).state === "idle");
      });
      let received = 500;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        received += next.value.users.length;
      }
      assert.ok(received >= 20_000, `received ${received} users`);
    } finally {
      controller.abort();
      await iterator.return?.();
    }
  });

  it("answers a write with the primary's WAL position in the x-blog-min-lsn trailer, and a read without", async () => {
    const trailers = await trailersOf(service!.address, "createUser", { user: { name: "Trailer", age: 2 } });
    const [text] = trailers.get(minLsnKey);
    const lsn = parseLsn(text);
    assert.ok(lsn !== undefined, `a pg_lsn, not ${String(text)}`);
    const [now] = await primary.query<{ ok: boolean }>("SELECT $1::pg_lsn <= pg_current_wal_lsn() AS ok", [text]);
    assert.equal(now?.ok, true);
    const read = await trailersOf(service!.address, "getUser", { id: 1n });
    assert.deepEqual(read.get(minLsnKey), []);
  });

  it("lets the SDK read its own writes at once, also while the standby lags", async () => {
    for (let i = 0; i < 20; i++) {
      const { user } = await sdk.users.createUser({ user: { name: `Fresh ${i}`, age: 3 } });
      assert.equal((await sdk.users.getUser({ id: user!.id })).user?.name, `Fresh ${i}`);
    }
    let id = 0n;
    await whilePaused(async () => {
      const { user } = await sdk.users.createUser({ user: { name: "While lagging", age: 4 } });
      id = user!.id;
      const { post } = await sdk.posts.createPost({ post: { userId: id, title: "Written while lagging" } });
      const full = await sdk.users.getUser({ id, view: UserView.FULL });
      assert.deepEqual(
        full.user?.posts.map((p) => p.title),
        ["Written while lagging"],
      );
      assert.equal((await sdk.posts.getPost({ id: post!.id })).post?.title, "Written while lagging");
      assert.equal((await sdk.posts.listPosts({ userId: id })).posts.length, 1);
      const updated = await sdk.users.updateUser({
        user: { id, age: 5, etag: full.user!.etag },
        updateMask: { paths: ["age"] },
      });
      assert.equal((await sdk.users.getUser({ id })).user?.etag, updated.user?.etag, "the update, read back");
      assert.equal(await found(plain, id), false, "without the position the read went to the lagging standby");
    });
    await until("the standby replays the write", () => found(plain, id));
  });

  it("reads from the primary while the standby is down, and from the standby again once it is back", async () => {
    await standby.stop();
    const id = await insertUser("While the standby is down");
    let exported = 0;
    for await (const batch of plain.users.exportUsers({})) exported += batch.users.length;
    const [total] = await primary.query<{ n: string }>("SELECT count(*) AS n FROM users", [], "blog");
    assert.equal(BigInt(exported), BigInt(total!.n), "the first read (a cursor) moved to the primary");
    assert.equal((await plain.users.getUser({ id })).user?.name, "While the standby is down");
    assert.equal((await plain.users.countUsers({})).count, BigInt(total!.n));
    await service!.waitForLine((l) => l.msg === "read replica unreachable: reading from the primary");

    await standby.start();
    await whilePaused(async () => {
      const hidden = await insertUser("Back, but not replayed");
      await until("reads go to the standby again", async () => !(await found(plain, hidden)), {
        timeoutMs: 30_000,
        everyMs: 200,
      });
    });
    await service!.waitForLine((l) => l.msg === "read replica answers again");
  });
});

describe("read replica configuration", () => {
  it("refuses malformed DATABASE_REPLICA_URLS without echoing them, and replicas without a primary", async () => {
    assert.throws(
      () => loadConfig({ DATABASE_REPLICA_URLS: "postgres://a/b, http://secret@c/d" }),
      (e: Error) => e.message === "DATABASE_REPLICA_URLS must be comma-separated postgres:// URLs; entry 2 is not",
    );
    assert.deepEqual(loadConfig({ DATABASE_REPLICA_URLS: " postgres://a/b ,, postgresql://c/d" }).databaseReplicaUrls, [
      "postgres://a/b",
      "postgresql://c/d",
    ]);
    await assert.rejects(
      openDatabase(loadConfig({ DATABASE_REPLICA_URLS: "postgres://a/b" }), pino({ level: "silent" })),
      /DATABASE_REPLICA_URLS and DATABASE_MIGRATION_URL need DATABASE_URL/,
    );
  });
});
