import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { credentials, status } from "@grpc/grpc-js";
import type { Knex } from "knex";
import pg from "pg";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { ExportPostsRequestSchema, PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { loadConfig } from "../src/config.js";
import { createClient } from "../src/client/transport.js";
import type { ClientError } from "../src/client/transport.js";
import { decodeErrorDetails } from "../src/client/errors.js";
import { poolOf } from "../src/db/knex-internals.js";
import { serverOptions } from "../src/grpc/server-options.js";
import { encode } from "../src/protocol/method.js";
import { startCustomServer } from "./custom-server.js";
import { grpcError } from "./helpers.js";
import { grpcFrame } from "./raw-http2.js";
import type { CustomServer } from "./custom-server.js";

// One server with small limits: 2 concurrent calls per connection, a
// 1-second stream lifetime, and replies of at most 1 MiB (requests up to 4).
const maxStreams = 2;
const lifetimeMs = 1000;

let env: CustomServer;
before(async () => {
  env = await startCustomServer({
    grpcOptions: {
      ...serverOptions,
      "grpc.max_concurrent_streams": maxStreams,
      "grpc.max_send_message_length": 1024 * 1024,
    },
    streamMaxLifetimeMs: lifetimeMs,
  });
});
after(() => env?.close());

/** storeUser inserts a user with n posts (titled `<name>-<i>`) into db and returns its id. */
async function storeUser(db: Knex, name: string, n = 0, content = "c"): Promise<bigint> {
  const [row] = await db("users").insert({ name, age: 1 }).returning("id");
  const id = (row as { id: bigint }).id;
  const posts = Array.from({ length: n }, (_, i) => ({ user_id: String(id), title: `${name}-${i}`, content }));
  if (n > 0) await db("posts").insert(posts);
  return id;
}

/** A client on a connection of its own (grpc-js shares connections between equal channels otherwise). */
const ownConnection = () =>
  createClient(UserService, `127.0.0.1:${env.port}`, credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const { values } = await env.server.metrics.getSingleMetric(name)!.get();
  const found = values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return found?.value ?? 0;
}

/** eventually polls check until it returns true, failing after timeoutMs. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** statusAfterRest reads an export's remaining messages, counting their users, and returns the status it ends with. */
async function statusAfterRest(
  messages: AsyncIterator<{ users: unknown[] }>,
  count: (users: number) => void,
): Promise<ClientError> {
  try {
    for (let next = await messages.next(); !next.done; next = await messages.next()) count(next.value.users.length);
  } catch (e) {
    return e as ClientError;
  }
  throw new Error("the export ended without an error");
}

/** activity queries pg_stat_activity on a connection of its own, outside the server's pool. */
async function activity<T>(sql: string, url = env.url): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

const lockWaiters = async (url = env.url) => {
  const [row] = await activity<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    url,
  );
  return row!.n;
};

describe("concurrent calls per connection (grpc.max_concurrent_streams)", () => {
  it("makes the calls beyond the limit wait in the client, then runs them: none fails", async () => {
    const ids = (
      await env
        .db("users")
        .insert([1, 2, 3].map((n) => ({ name: `u${n}`, age: n })))
        .returning("id")
    ).map((r: { id: bigint }) => r.id);
    const locker = new pg.Client({ connectionString: env.url });
    await locker.connect();
    const client = ownConnection();
    const other = ownConnection();
    try {
      await client.countUsers({}); // connected, and the server's SETTINGS known
      await locker.query("BEGIN");
      await locker.query("SELECT id FROM users FOR UPDATE");
      const updates = ids.map((id) =>
        client.updateUser({ user: { id, age: 99 }, updateMask: { paths: ["age"] } }, { deadline: Date.now() + 30_000 }),
      );
      const started = () => metric("grpc_server_started_total", { grpc_method: "UpdateUser" });
      await eventually("updates wait for the row locks", async () => (await lockWaiters()) >= maxStreams);
      // Another connection is served meanwhile; the third update has still not reached the server.
      assert.equal((await other.getUser({ id: ids[2]! })).user?.age, 3);
      assert.equal(await started(), maxStreams, "the call beyond the limit is not started on the server");
      assert.equal(await lockWaiters(), maxStreams);
      await locker.query("COMMIT");
      const answers = await Promise.all(updates);
      assert.deepEqual(
        answers.map((a) => a.user?.age),
        [99, 99, 99],
      );
      assert.equal(await started(), 3);
    } finally {
      await locker.end();
      client.close();
      other.close();
    }
  });

  it("reads its limit from GRPC_MAX_CONCURRENT_STREAMS, 100 by default", () => {
    assert.equal(loadConfig({}).grpcServerOptions["grpc.max_concurrent_streams"], 100);
    const set = loadConfig({ GRPC_MAX_CONCURRENT_STREAMS: "8" });
    assert.equal(set.grpcServerOptions["grpc.max_concurrent_streams"], 8);
    assert.throws(() => loadConfig({ GRPC_MAX_CONCURRENT_STREAMS: "0" }), /GRPC_MAX_CONCURRENT_STREAMS must be/);
  });
});

describe("stream lifetime (STREAM_MAX_LIFETIME_MS)", () => {
  it("lets a stream that finishes in time end OK", async () => {
    const client = ownConnection();
    try {
      let received = 0;
      for await (const page of client.exportUsers({})) received += page.users.length;
      assert.equal(received, 3);
    } finally {
      client.close();
    }
  });

  it("ends an export whose client stopped reading with DEADLINE_EXCEEDED, and frees its cursor", async () => {
    await env.db.raw("INSERT INTO users (name, age) SELECT 'user ' || g, g % 100 FROM generate_series(1, 50000) g");
    const client = ownConnection();
    try {
      // The client reads one message and then stops: HTTP/2 flow control
      // soon holds the server's writes, and the export would wait forever.
      // (A grpc-js client that never starts reading buffers the whole stream
      // itself instead, so the test reads once.)
      const messages = client.exportUsers({})[Symbol.asyncIterator]();
      let received = (await messages.next()).value?.users.length ?? 0;
      const ended = () =>
        metric("grpc_server_handled_total", { grpc_method: "ExportUsers", grpc_code: "DEADLINE_EXCEEDED" });
      await eventually("the server ends the export", async () => (await ended()) === 1);
      const line = env.logs.find((l) => l.method === "/blog.v1.UserService/ExportUsers" && l.grpcCode !== "OK");
      assert.equal(line?.grpcCode, "DEADLINE_EXCEEDED");
      assert.ok((line?.messagesSent as number) < 100, `the server sent ${String(line?.messagesSent)} of 100 messages`);
      // No statement of the export is left running or holding a transaction.
      const busy = await activity<{ state: string; query: string }>(
        "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'blog-service' AND state <> 'idle'",
      );
      assert.deepEqual(busy, []);
      // The client reads what it had received, then the status.
      const error = await statusAfterRest(messages, (n) => (received += n));
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
      assert.equal(
        error.details,
        `the stream ran for the server's maximum stream lifetime of ${lifetimeMs} ms; resume with a new call`,
      );
      assert.ok(received >= 500 && received < 50_003, `received ${received} users`);
    } finally {
      client.close();
    }
  });

  it("reads its cap from STREAM_MAX_LIFETIME_MS, 10 minutes by default", () => {
    assert.equal(loadConfig({}).streamMaxLifetimeMs, 600_000);
    assert.equal(loadConfig({ STREAM_MAX_LIFETIME_MS: "5000" }).streamMaxLifetimeMs, 5000);
    assert.throws(() => loadConfig({ STREAM_MAX_LIFETIME_MS: "-1" }), /STREAM_MAX_LIFETIME_MS must be/);
  });
});

describe("reply budget (GRPC_MAX_SEND_MESSAGE_BYTES)", () => {
  it("refuses a BatchCreatePosts whose reply could not be sent before writing anything", async () => {
    const [user] = await env.db("users").insert({ name: "Batcher", age: 1 }).returning("id");
    const userId = (user as { id: bigint }).id;
    const posts = createClient(PostService, `127.0.0.1:${env.port}`, credentials.createInsecure());
    try {
      // 300 posts of 4,000 characters: a 1.2 MB request (under the 4 MiB receive limit), a reply over 1 MiB.
      const requests = Array.from({ length: 300 }, (_, i) => ({
        post: { userId, title: `t${i}`, content: "c".repeat(4000) },
      }));
      const error = await posts.batchCreatePosts({ userId, requests }).then(
        () => assert.fail("the batch was answered OK"),
        (e: unknown) => e as ClientError,
      );
      assert.equal(error.code, status.RESOURCE_EXHAUSTED);
      assert.match(
        error.details,
        /^the reply would take about 1\.\d MiB, over the 1\.0 MiB a message may carry; send the posts in smaller batches$/,
      );
      const [stored] = await env.db("posts").where("user_id", String(userId)).count({ n: "*" });
      assert.equal(Number(stored?.n), 0, "nothing was committed");
      const line = env.logs.find((l) => l.method === "/blog.v1.PostService/BatchCreatePosts");
      assert.equal(line?.grpcCode, "RESOURCE_EXHAUSTED", "logged with the status the client received");
      // Half of it fits, and is written.
      assert.equal((await posts.batchCreatePosts({ userId, requests: requests.slice(0, 150) })).posts.length, 150);
    } finally {
      posts.close();
    }
  });

  it("answers, logs and counts a reply over the send limit that no estimate caught as RESOURCE_EXHAUSTED", async () => {
    // GetPost is not sized before it is built (a post is far below 4 MiB), so a send limit
    // smaller than one post reaches the adapter's last check, where grpc-js would have
    // refused the message after the handler returned and the call been logged OK.
    const tiny = await startCustomServer({ grpcOptions: { ...serverOptions, "grpc.max_send_message_length": 300 } });
    const posts = createClient(PostService, `127.0.0.1:${tiny.port}`, credentials.createInsecure());
    try {
      const [user] = await tiny.db("users").insert({ name: "Long", age: 1 }).returning("id");
      const userId = (user as { id: bigint }).id;
      const ids = await tiny
        .db("posts")
        .insert([
          { user_id: String(userId), title: "short", content: "c" },
          { user_id: String(userId), title: "long", content: "c".repeat(1000) },
        ])
        .returning("id");
      const [short, long] = ids.map((r: { id: bigint }) => r.id);
      assert.equal((await posts.getPost({ id: short! })).post?.title, "short");
      const error = await posts.getPost({ id: long! }).then(
        () => assert.fail("the post was answered OK"),
        (e: unknown) => e as ClientError,
      );
      assert.equal(error.code, status.RESOURCE_EXHAUSTED);
      assert.match(
        error.details,
        /^the reply would take about 0\.0 MiB, over the 0\.0 MiB a message may carry; ask for less/,
      );
      const lines = tiny.logs.filter((l) => l.method === "/blog.v1.PostService/GetPost");
      assert.deepEqual(
        lines.map((l) => l.grpcCode),
        ["OK", "RESOURCE_EXHAUSTED"],
      );
      const { values } = await tiny.server.metrics.getSingleMetric("grpc_server_handled_total")!.get();
      const counted = values.find(
        (v) => v.labels.grpc_method === "GetPost" && v.labels.grpc_code === "RESOURCE_EXHAUSTED",
      );
      assert.equal(counted?.value, 1);
    } finally {
      posts.close();
      await tiny.close();
    }
  });
});

describe("stream idle-write timeout (STREAM_IDLE_WRITE_TIMEOUT_MS)", () => {
  it("ends an export whose client takes no message for that long, long before the stream lifetime", async () => {
    const idle = await startCustomServer({ streamIdleWriteMs: 300 });
    const client = createClient(UserService, `127.0.0.1:${idle.port}`, credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
    });
    try {
      await idle.db.raw("INSERT INTO users (name, age) SELECT 'user ' || g, g % 100 FROM generate_series(1, 50000) g");
      // Read one message, then stop: HTTP/2 flow control soon holds the server's writes.
      const messages = client.exportUsers({})[Symbol.asyncIterator]();
      let received = (await messages.next()).value?.users.length ?? 0;
      await eventually("the server ends the stalled export", async () =>
        idle.logs.some((l) => l.method === "/blog.v1.UserService/ExportUsers" && l.grpcCode === "DEADLINE_EXCEEDED"),
      );
      const error = await statusAfterRest(messages, (n) => (received += n));
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
      assert.equal(
        error.details,
        "the client read nothing for 300 ms, the server's stream idle-write timeout; resume with a new call",
      );
      assert.ok(received < 50_000, `received ${received} users`);
      assert.equal(loadConfig({}).streamIdleWriteMs, 30_000);
      assert.equal(loadConfig({ STREAM_IDLE_WRITE_TIMEOUT_MS: "5000" }).streamIdleWriteMs, 5000);
    } finally {
      client.close();
      await idle.close();
    }
  });
});

describe("health when the pool gives no connection (DATABASE_POOL_STARVED_MS)", () => {
  it("says NOT_SERVING while callers wait on a full pool, and SERVING again once they are served", async () => {
    const starved = await startCustomServer({ poolStarvedMs: 200, dbHealthIntervalMs: 50 });
    const address = `127.0.0.1:${starved.port}`;
    const health = createClient(Health, address, credentials.createInsecure());
    const users = createClient(UserService, address, credentials.createInsecure());
    const held = await Promise.all(Array.from({ length: 5 }, () => starved.db.transaction())); // the whole pool
    try {
      const check = async () => (await health.check({ service: "" })).status;
      assert.equal(await check(), ServingStatus.SERVING);
      const waiting = users.countUsers({}); // waits for a connection
      await eventually("health says NOT_SERVING", async () => (await check()) === ServingStatus.NOT_SERVING);
      await Promise.all(held.map((trx) => trx.rollback()));
      assert.equal((await waiting).count, 0n);
      await eventually("health says SERVING again", async () => (await check()) === ServingStatus.SERVING);
      assert.ok(starved.logs.some((l) => l.msg === "no pooled connection could be had for a while: not serving"));
      assert.equal(loadConfig({}).poolStarvedMs, 10_000);
    } finally {
      await Promise.all(held.map((trx) => (trx.isCompleted() ? undefined : trx.rollback())));
      health.close();
      users.close();
      await starved.close();
    }
  });
});

describe("pages and export chunks within the send limit (1 MiB here)", () => {
  const big = "x".repeat(100_000); // 100 kB a post: ten fit in 1 MiB

  /** userWithPosts stores a user with n posts of 100 kB and returns its id. */
  const userWithPosts = (name: string, n: number) => storeUser(env.db, name, n, big);

  it("cuts a ListPosts page short where its posts would pass the limit, and pages through every post once", async () => {
    const userId = await userWithPosts("Pager", 35);
    const posts = createClient(PostService, `127.0.0.1:${env.port}`, credentials.createInsecure());
    try {
      const seen: string[] = [];
      const sizes: number[] = [];
      let pageToken = "";
      do {
        const page = await posts.listPosts({ userId, pageSize: 1000, pageToken });
        sizes.push(page.posts.length);
        seen.push(...page.posts.map((p) => p.title));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      assert.deepEqual(
        seen,
        Array.from({ length: 35 }, (_, i) => `Pager-${i}`),
      );
      assert.ok(sizes.length >= 4, `35 posts of 100 kB take several pages of 1 MiB, not ${sizes.join(", ")}`);
      assert.ok(Math.max(...sizes) <= 10, `no page holds more than 1 MiB of posts: ${sizes.join(", ")}`);
    } finally {
      posts.close();
    }
  });

  it("exports posts in chunks and messages within the limit, every post once", async () => {
    const userId = await userWithPosts("Exporter", 25);
    const posts = createClient(PostService, `127.0.0.1:${env.port}`, credentials.createInsecure());
    try {
      const messages: string[][] = [];
      for await (const message of posts.exportPosts({ userId })) messages.push(message.posts.map((p) => p.title));
      assert.deepEqual(
        messages.flat(),
        Array.from({ length: 25 }, (_, i) => `Exporter-${i}`),
      );
      // A message takes at most half the send limit: five posts of 100 kB.
      assert.ok(Math.max(...messages.map((m) => m.length)) <= 5, messages.map((m) => m.length).join(", "));
    } finally {
      posts.close();
    }
  });

  it("ends a ListUsers FULL page before the first user whose posts do not fit, and refuses a user too large alone", async () => {
    const prefix = `Full${Date.now()}`;
    const ids = [];
    for (const [i, n] of [3, 4, 5, 0, 2, 12, 1].entries()) ids.push(await userWithPosts(`${prefix}-${i}`, n));
    const users = ownConnection();
    try {
      const seen = new Map<string, number>();
      const sizes: number[] = [];
      let pageToken = "";
      let refused: ClientError | undefined;
      const filter = `name:"${prefix}"`;
      do {
        const page = await users
          .listUsers({ filter, pageSize: 100, view: UserView.FULL, pageToken })
          .catch((e: unknown) => {
            refused = e as ClientError;
            return undefined;
          });
        if (page === undefined) break;
        sizes.push(page.users.length);
        for (const user of page.users) seen.set(user.name, user.posts.length);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      // Users 0-4 (14 posts) come whole over pages of at most ten posts; user 5 (12 posts, 1.2 MB) cannot be sent.
      assert.deepEqual(
        [...seen],
        [3, 4, 5, 0, 2].map((n, i) => [`${prefix}-${i}`, n]),
      );
      assert.ok(sizes.length >= 2, `several pages: ${sizes.join(", ")}`);
      assert.equal(refused?.code, status.RESOURCE_EXHAUSTED);
      assert.match(refused!.details, /this user's posts alone take more: read them with ListPosts, or use view BASIC$/);
      // BASIC lists them all on one page.
      const basic = await users.listUsers({ filter, pageSize: 100 });
      assert.equal(basic.users.length, 7);
    } finally {
      users.close();
    }
  });
});

describe("server streams: caps per connection and process, and their share of the pool", () => {
  /** stalledExport opens an ExportPosts of userId, reads its first message and stops reading. */
  async function stalledExport(client: ReturnType<typeof createClient<typeof PostService>>, userId: bigint) {
    const controller = new AbortController();
    const messages = client.exportPosts({ userId }, { signal: controller.signal })[Symbol.asyncIterator]();
    await messages.next();
    return { messages, cancel: () => controller.abort() };
  }

  async function refusal(call: Promise<unknown>): Promise<ClientError> {
    return call.then(
      () => assert.fail("the stream was not refused"),
      (e: unknown) => e as ClientError,
    );
  }

  it("refuses a stream past STREAM_MAX_PER_CONNECTION or STREAM_MAX_PER_PROCESS with RESOURCE_EXHAUSTED, and serves unary calls", async () => {
    const capped = await startCustomServer({ streamCaps: { perConnection: 2, perProcess: 3 } });
    // 40 posts of 100 kB: far more than HTTP/2 lets the server send ahead to a reader that stopped.
    const userId = await storeUser(capped.db, "Streamer", 40, "s".repeat(100_000));
    const connect = () =>
      createClient(PostService, `127.0.0.1:${capped.port}`, credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
      });
    const [a, b] = [connect(), connect()];
    try {
      const first = [await stalledExport(a, userId), await stalledExport(a, userId)];
      const onA = await refusal(stalledExport(a, userId));
      assert.equal(onA.code, status.RESOURCE_EXHAUSTED);
      assert.equal(
        onA.details,
        "this connection has 2 streams open, the most it may (STREAM_MAX_PER_CONNECTION); retry once one of them has ended",
      );
      // Another connection gets the process's third stream, and no fourth.
      const onB = await stalledExport(b, userId);
      const fourth = await refusal(stalledExport(b, userId));
      assert.equal(fourth.code, status.RESOURCE_EXHAUSTED);
      assert.match(fourth.details, /^the server has 3 streams open, the most it may \(STREAM_MAX_PER_PROCESS\)/);
      // Unary calls on the full connection are served.
      assert.equal((await a.listPosts({ userId, pageSize: 1 })).posts.length, 1);
      // A stream that ends gives its place back.
      first[0]!.cancel();
      await eventually("the cancelled stream is counted out", async () =>
        stalledExport(a, userId).then(
          (s) => (first.push(s), true),
          () => false,
        ),
      );
      for (const s of [...first.slice(1), onB]) s.cancel();
      const refused = capped.logs.filter((l) => l.grpcCode === "RESOURCE_EXHAUSTED");
      assert.ok(refused.length >= 2, "refusals are logged with their status");
    } finally {
      a.close();
      b.close();
      await capped.close();
    }
  });

  it("serves everyone else while one raw HTTP/2 connection holds its 16 streams open with a zero window", async () => {
    // The attack of issue 12: a few exports on one connection that never grant the server a byte of
    // window. grpc-js clients always read, so Node's http2 client plays the attacker.
    const attacked = await startCustomServer({});
    const userId = await storeUser(attacked.db, "Target", 20);
    const session = http2.connect(`http://127.0.0.1:${attacked.port}`, { settings: { initialWindowSize: 0 } });
    const users = createClient(UserService, `127.0.0.1:${attacked.port}`, credentials.createInsecure());
    const health = createClient(Health, `127.0.0.1:${attacked.port}`, credentials.createInsecure());
    const pool = poolOf(attacked.db)!;
    try {
      const open = (): Promise<string | undefined> =>
        new Promise((resolve, reject) => {
          const request = session.request({
            ":method": "POST",
            ":path": "/blog.v1.PostService/ExportPosts",
            "content-type": "application/grpc",
            te: "trailers",
          });
          request.on("response", (headers) => resolve(headers["grpc-status"] as string | undefined));
          request.on("error", reject);
          request.end(grpcFrame(encode(ExportPostsRequestSchema, { userId })));
        });
      const started = await Promise.all(Array.from({ length: 16 }, open));
      assert.deepEqual(new Set(started), new Set([undefined]), "16 streams started, none answered");
      const refused = await open();
      assert.equal(refused, String(status.RESOURCE_EXHAUSTED), "the 17th is refused at once");
      // The stalled exports hold no connection, and every other caller is served.
      await eventually("the stalled exports hold no pooled connection", async () => pool.numUsed() === 0);
      const answers = await Promise.all(Array.from({ length: 30 }, () => users.getUser({ id: userId })));
      assert.equal(answers.length, 30);
      assert.equal((await health.check({ service: "" })).status, ServingStatus.SERVING);
    } finally {
      session.destroy();
      users.close();
      health.close();
      await attacked.close();
    }
  });

  it("lets stream statements hold at most half the pool, so unary calls are served while they wait", async () => {
    // Pool of 5 (startCustomServer), share 2; a stall beyond HTTP/2: every export's statement waits on a table lock.
    const shared = await startCustomServer({});
    const userId = await storeUser(shared.db, "Sharer", 1);
    const locker = new pg.Client({ connectionString: shared.url });
    await locker.connect();
    const posts = createClient(PostService, `127.0.0.1:${shared.port}`, credentials.createInsecure());
    const users = createClient(UserService, `127.0.0.1:${shared.port}`, credentials.createInsecure());
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE");
      const exports = Array.from({ length: 6 }, async () => {
        let n = 0;
        for await (const m of posts.exportPosts({ userId })) n += m.posts.length;
        return n;
      });
      const waiting = () => lockWaiters(shared.url);
      await eventually("two export statements wait on the lock", async () => (await waiting()) === 2);
      // Six exports are open, two statements hold connections, and the pool still serves everyone else.
      for (let i = 0; i < 5; i++) assert.equal((await users.getUser({ id: userId })).user?.name, "Sharer");
      assert.equal(await waiting(), 2, "no third stream statement took a connection");
      await locker.query("COMMIT");
      assert.deepEqual(await Promise.all(exports), [1, 1, 1, 1, 1, 1]);
    } finally {
      await locker.end();
      posts.close();
      users.close();
      await shared.close();
    }
  });

  it("runs LARGE_READS_MAX reads of many users with their posts at once, and the others at once", async () => {
    const turns = await startCustomServer({ largeReadsMax: 1 });
    const id = await storeUser(turns.db, "Large", 1);
    const locker = new pg.Client({ connectionString: turns.url });
    await locker.connect();
    const users = createClient(UserService, `127.0.0.1:${turns.port}`, credentials.createInsecure());
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE");
      const full = Array.from({ length: 3 }, () => users.batchGetUsers({ ids: [id], view: UserView.FULL }));
      await eventually("one FULL read waits on the lock", async () => (await lockWaiters(turns.url)) === 1);
      // The other two wait their turn in the service; BASIC reads go at once.
      assert.equal((await users.batchGetUsers({ ids: [id, id] })).users.length, 2);
      assert.equal((await users.listUsers({})).users.length, 1);
      assert.equal(await lockWaiters(turns.url), 1, "no second FULL read reached PostgreSQL");
      await locker.query("COMMIT");
      for (const answer of await Promise.all(full)) assert.equal(answer.users[0]?.posts.length, 1);
    } finally {
      await locker.end();
      users.close();
      await turns.close();
    }
  });

  it("builds no more than LARGE_READ_BYTES_PER_SECOND of those replies: past it a caller waits, or hears when to retry", async () => {
    const budgeted = await startCustomServer({ largeReadBytesPerSecond: 100_000, largeReadFreeBytes: 0 });
    const id = await storeUser(budgeted.db, "Budgeted", 30, "b".repeat(10_000));
    const users = createClient(UserService, `127.0.0.1:${budgeted.port}`, credentials.createInsecure());
    try {
      // The first read finds the whole budget (one second's worth) and leaves it about 2 s in debt.
      assert.equal((await users.batchGetUsers({ ids: [id], view: UserView.FULL })).users[0]?.posts.length, 30);
      const hasty = users.batchGetUsers({ ids: [id], view: UserView.FULL }, { deadline: Date.now() + 1000 });
      const refused = await grpcError(hasty);
      assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
      assert.match(
        refused.details,
        /budget of 100000 reply bytes per second \(LARGE_READ_BYTES_PER_SECOND\); retry in \d\.\d s/,
      );
      const details = decodeErrorDetails(refused.metadata);
      const info = details.find((d) => d.$typeName === "google.rpc.ErrorInfo");
      assert.equal(info?.$typeName === "google.rpc.ErrorInfo" && info.reason, "LARGE_READ_BUDGET");
      const retry = details.find((d) => d.$typeName === "google.rpc.RetryInfo");
      assert.ok(
        retry?.$typeName === "google.rpc.RetryInfo" && retry.retryDelay!.seconds >= 1n,
        "RetryInfo says to wait past the deadline",
      );
      // Reads that are not of many users with their posts are not held up.
      assert.equal((await users.batchGetUsers({ ids: [id] })).users.length, 1);
      assert.equal((await users.getUser({ id, view: UserView.FULL })).user?.posts.length, 30);
      // A caller that can wait is answered once the debt is paid.
      assert.equal((await users.batchGetUsers({ ids: [id], view: UserView.FULL })).users[0]?.posts.length, 30);
    } finally {
      users.close();
      await budgeted.close();
    }
  });

  it("counts a reply against LARGE_READ_BYTES_PER_SECOND beyond LARGE_READ_FREE_BYTES only, and a reply refused for its size too", async () => {
    // A rate of 50,000 bytes a second, the first 40,000 of each reply free: replies of about 30 KB never wait.
    const budgeted = await startCustomServer({
      largeReadBytesPerSecond: 50_000,
      largeReadFreeBytes: 40_000,
      grpcOptions: { ...serverOptions, "grpc.max_send_message_length": 400_000 },
    });
    const small = await storeUser(budgeted.db, "Small", 30, "s".repeat(1_000));
    const large = await storeUser(budgeted.db, "Large", 30, "l".repeat(5_000));
    const users = createClient(UserService, `127.0.0.1:${budgeted.port}`, credentials.createInsecure());
    const within = (ms: number) => ({ deadline: Date.now() + ms });
    try {
      // Ten small reads in a row would be 300 KB, six seconds of the rate if they counted: none waits.
      for (let i = 0; i < 10; i++) {
        assert.equal((await users.batchGetUsers({ ids: [small], view: UserView.FULL }, within(500))).users.length, 1);
      }
      // 16 copies of the large user (about 2.4 MB) are read, then refused for their size: the read is paid for.
      const oversized = await grpcError(users.batchGetUsers({ ids: Array(16).fill(large), view: UserView.FULL }));
      assert.equal(oversized.code, status.RESOURCE_EXHAUSTED);
      assert.match(oversized.details, /^the reply would take about/);
      // The budget is now seconds in debt: even a small read that cannot wait hears when to retry.
      const refused = await grpcError(users.batchGetUsers({ ids: [small], view: UserView.FULL }, within(1000)));
      assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
      assert.match(
        refused.details,
        /\(LARGE_READ_BYTES_PER_SECOND\), counted beyond each reply's first 40000 bytes; retry in/,
      );
    } finally {
      users.close();
      await budgeted.close();
    }
  });

  it("reads the caps and the share from STREAM_MAX_PER_CONNECTION, STREAM_MAX_PER_PROCESS and STREAM_POOL_SHARE", () => {
    const defaults = loadConfig({});
    assert.deepEqual(
      [defaults.streamMaxPerConnection, defaults.streamMaxPerProcess, defaults.streamPoolShare],
      [16, 256, 5],
    );
    const set = loadConfig({ STREAM_MAX_PER_CONNECTION: "4", STREAM_MAX_PER_PROCESS: "8", DATABASE_POOL_MAX: "3" });
    assert.deepEqual([set.streamMaxPerConnection, set.streamMaxPerProcess, set.streamPoolShare], [4, 8, 1]);
    assert.throws(() => loadConfig({ STREAM_POOL_SHARE: "11" }), /STREAM_POOL_SHARE must be at most DATABASE_POOL_MAX/);
    assert.equal(defaults.largeReadsMax, 2);
    assert.equal(loadConfig({ LARGE_READS_MAX: "1" }).largeReadsMax, 1);
    assert.equal(defaults.largeReadBytesPerSecond, 4 * 2 ** 20);
    assert.equal(loadConfig({ LARGE_READ_BYTES_PER_SECOND: "1000" }).largeReadBytesPerSecond, 1000);
    assert.equal(defaults.largeReadFreeBytes, 256 * 2 ** 10);
    assert.equal(loadConfig({ LARGE_READ_FREE_BYTES: "0" }).largeReadFreeBytes, 0);
    assert.throws(
      () => loadConfig({ LARGE_READ_FREE_BYTES: "-1" }),
      /LARGE_READ_FREE_BYTES must be a non-negative integer/,
    );
    assert.equal(defaults.logFlushMs, 200);
    assert.equal(loadConfig({ LOG_FLUSH_MS: "0" }).logFlushMs, 0);
  });
});
