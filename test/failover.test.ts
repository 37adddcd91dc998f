// High availability under pg_auto_failover (Debian's postgresql-15-auto-failover
// and pg-auto-failover-cli): a monitor and two data nodes with synchronous
// replication on loopback, and the service as deployed, with the multi-host
// DATABASE_URL that `pg_autoctl show uri` prints. Under a steady load of
// CreatePost (with request_id) and reads from the SDK, the primary's node is
// killed (-9: pg_autoctl and PostgreSQL, as when its machine dies), then it
// rejoins as a standby and serves reads, then the manager switches over.
// What is measured (lost and duplicated writes, the window in which calls
// failed, the time until health says SERVING again) is printed; README.md
// ("High availability") quotes it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { TestContext } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { credentials, status } from "@grpc/grpc-js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { BlogClientError, createBlogClient } from "../src/client/index.js";
import type { BlogClient } from "../src/client/index.js";
import { createClient } from "../src/client/transport.js";
import { assertNoLeaks } from "./leaks.js";
import { autoFailoverPgBin, autoctlBin, startFormation } from "./auto-failover.js";
import type { DataNode, Formation } from "./auto-failover.js";
import { until } from "./poll.js";
import { startServiceProcess } from "./service-process.js";
import type { ServiceProcess } from "./service-process.js";

const bin = autoFailoverPgBin();
const missing =
  autoctlBin === undefined || bin === undefined
    ? "needs pg_auto_failover (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)"
    : undefined;
// CI installs the packages and sets REQUIRE_AUTO_FAILOVER, so there their absence fails the test.
if (missing !== undefined && process.env.REQUIRE_AUTO_FAILOVER) throw new Error(missing);

let formation: Formation | undefined;
let service: ServiceProcess | undefined;
/** sdk is a careful caller: the SDK's retries, read-your-writes, and request ids on creates. */
let sdk: BlogClient;
/** plain sends no write position, so its reads may go to a lagging standby. */
let plain: BlogClient;
let userId: bigint;

before(async () => {
  if (missing !== undefined) return;
  formation = await startFormation(bin!);
  const [node1, node2] = formation.nodes;
  await node1.query("CREATE DATABASE blog");
  service = await startServiceProcess({
    DATABASE_URL: await formation.uri("blog"),
    // Every node may serve reads that tolerate lag; whichever is the primary is skipped for the others.
    DATABASE_REPLICA_URLS: [node1.url("blog"), node2.url("blog")].join(","),
    MIGRATE_ON_START: "1",
    DATABASE_POOL_MAX: "6",
  });
  sdk = createBlogClient(service.address);
  plain = createBlogClient(service.address, { readYourWrites: false });
  userId = (await sdk.users.createUser({ requestId: randomUUID(), user: { name: "Writer", age: 40 } })).user!.id;
});

after(async () => {
  sdk?.close();
  plain?.close();
  service?.kill();
  await service?.exited;
  await formation?.stop();
});

/** A failed attempt as the caller saw it, before any retry of its own. */
interface Failure {
  at: number;
  call: string;
  code: status;
  details: string;
}

/** Load is a steady stream of writes and reads, with what it saw. */
interface Load {
  /** acknowledged is every post whose CreatePost succeeded, with the title it was sent with. */
  acknowledged: Map<bigint, string>;
  /** failures are every call that failed after the SDK's own retries (keyed creates and reads retry on UNAVAILABLE). */
  failures: Failure[];
  /** fatal are calls that failed for good: another code than UNAVAILABLE, or no success within two minutes. */
  fatal: unknown[];
  stop(): Promise<void>;
}

/**
 * startLoad runs workers that each create a post with a request_id (the SDK
 * retries it on UNAVAILABLE with the same id until its deadline; past that the
 * worker tries again with the same id, as a careful caller does), then read it
 * back with GetPost and read the user with GetUser (the SDK retries those on
 * UNAVAILABLE). Plus one raw reader without any retry, which sees every
 * UNAVAILABLE.
 */
function startLoad(label: string, workers = 3): Load {
  const raw = createBlogClient(service!.address, { retry: false, readYourWrites: false });
  const acknowledged = new Map<bigint, string>();
  const failures: Failure[] = [];
  const fatal: unknown[] = [];
  let running = true;
  /** attempt runs one call until it succeeds, recording each failure; undefined when it failed for good. */
  const attempt = async <T>(call: string, work: () => Promise<T>): Promise<T | undefined> => {
    const started = Date.now();
    for (;;) {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof BlogClientError)) return void fatal.push(error);
        failures.push({ at: Date.now(), call, code: error.code, details: error.message });
        const again =
          error.code === status.UNAVAILABLE || (call === "CreatePost" && error.code === status.DEADLINE_EXCEEDED);
        if (!again || Date.now() - started > 120_000) return void fatal.push(error);
        await delay(50);
      }
    }
  };
  const work = async (worker: number) => {
    for (let i = 0; running; i++) {
      const title = `${label} w${worker} #${i}`;
      const requestId = randomUUID();
      const created = await attempt("CreatePost", () => sdk.posts.createPost({ requestId, post: { userId, title } }));
      if (created === undefined) return;
      const id = created.post!.id;
      acknowledged.set(id, title);
      const read = await attempt("GetPost", () => sdk.posts.getPost({ id }));
      if (read !== undefined && read.post?.title !== title) fatal.push(new Error(`GetPost ${id}: ${read.post?.title}`));
      await attempt("GetUser", () => sdk.users.getUser({ id: userId }));
    }
  };
  const rawReader = async () => {
    while (running) {
      await raw.users.getUser({ id: userId }).catch((error: unknown) => {
        if (error instanceof BlogClientError) {
          failures.push({ at: Date.now(), call: "raw GetUser", code: error.code, details: error.message });
        } else fatal.push(error);
      });
      await delay(25);
    }
  };
  const all = [...Array.from({ length: workers }, (_, w) => work(w)), rawReader()];
  return {
    acknowledged,
    failures,
    fatal,
    stop: async () => {
      running = false;
      await Promise.all(all);
      raw.close();
    },
  };
}

/** HealthLog polls grpc.health.v1 Check and keeps every change with its time. */
interface HealthLog {
  changes: { at: number; status: ServingStatus | "error" }[];
  stop(): Promise<void>;
}

function watchHealth(): HealthLog {
  const health = createClient(Health, service!.address, credentials.createInsecure());
  const changes: HealthLog["changes"] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = await health.check({ service: "" }, { deadline: Date.now() + 2000 }).then(
        (r) => r.status,
        () => "error" as const,
      );
      if (changes.at(-1)?.status !== now) changes.push({ at: Date.now(), status: now });
      await delay(50);
    }
  })();
  return {
    changes,
    stop: async () => {
      running = false;
      await loop;
      health.close();
    },
  };
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));

/** primaryNode is the node the monitor reports as the one taking writes. */
async function primaryNode(): Promise<DataNode> {
  const states = await formation!.states();
  // A dead primary stays reported as one (assigned "demoted"): the primary is the one assigned the role too.
  const name = states.find((s) => s.reported === s.assigned && ["primary", "wait_primary"].includes(s.reported))?.name;
  const node = formation!.nodes.find((n) => n.name === name);
  assert.ok(node !== undefined, `a primary in ${JSON.stringify(states)}`);
  return node;
}

/**
 * checkWrites compares the acknowledged posts with the primary's rows of this
 * load: lost are acknowledged posts missing (or changed), duplicates are titles
 * stored more than once (a retry that created again), orphans rows nobody was told of.
 */
async function checkWrites(label: string, load: Load) {
  const node = await primaryNode();
  const rows = await node.query<{ id: string; title: string }>(
    "SELECT id::text, title FROM posts WHERE title LIKE $1",
    [`${label} %`],
    "blog",
  );
  const stored = new Map(rows.map((r) => [BigInt(r.id), r.title]));
  const lost = [...load.acknowledged].filter(([id, title]) => stored.get(id) !== title).length;
  const titles = new Map<string, number>();
  for (const r of rows) titles.set(r.title, (titles.get(r.title) ?? 0) + 1);
  const duplicates = [...titles.values()].filter((n) => n > 1).length;
  const orphans = rows.filter((r) => !load.acknowledged.has(BigInt(r.id))).length;
  return { lost, duplicates, orphans };
}

/** report sums a disruption up; the window runs from the first to the last UNAVAILABLE any caller saw. */
function report(t: TestContext, label: string, start: number, load: Load, health: HealthLog, writes: object) {
  const unavailable = load.failures.filter((f) => f.code === status.UNAVAILABLE);
  const first = unavailable[0]?.at;
  const last = unavailable.at(-1)?.at;
  const notServing = health.changes.find((c) => c.at >= start && c.status !== ServingStatus.SERVING);
  const servingAgain = health.changes.find((c) => notServing !== undefined && c.at > notServing.at);
  // What the service answered, before any retry: its call log.
  const answered = service!.lines.filter(
    (l) =>
      typeof l.time === "number" && l.time >= start && l.grpcCode === "UNAVAILABLE" && typeof l.method === "string",
  );
  const figures = {
    acknowledgedWrites: load.acknowledged.size,
    unavailableAnswered: answered.length,
    serviceUnavailableWindowSeconds:
      answered.length === 0 ? 0 : seconds((answered.at(-1)!.time as number) - (answered[0]!.time as number)),
    ...writes,
    failedAttempts: Object.fromEntries(
      ["CreatePost", "GetPost", "GetUser", "raw GetUser"].map((call) => [
        call,
        load.failures.filter((f) => f.call === call).length,
      ]),
    ),
    failedForGood: load.fatal.length,
    messages: Object.fromEntries(
      [...new Set(load.failures.map((f) => f.details))].map((m) => [
        m,
        load.failures.filter((f) => f.details === m).length,
      ]),
    ),
    unavailableWindowSeconds: first === undefined ? 0 : seconds(last! - first),
    healthNotServingAfterSeconds: notServing && seconds(notServing.at - start),
    healthServingAgainAfterSeconds: servingAgain && seconds(servingAgain.at - start),
  };
  t.diagnostic(`${label}: ${JSON.stringify(figures)}`);
  return figures;
}

/** assertOnlyRetryable: every failed attempt was UNAVAILABLE with a message that leaks nothing, and none failed for good. */
function assertOnlyRetryable(load: Load) {
  assert.deepEqual(load.fatal.map(String), [], "no call failed for good");
  // A keyed create may also run out of its deadline while the SDK retries it; the caller tries again with the same id.
  const other = load.failures.filter(
    (f) => f.code !== status.UNAVAILABLE && !(f.call === "CreatePost" && f.code === status.DEADLINE_EXCEEDED),
  );
  assert.deepEqual(other, [], "every failed attempt was UNAVAILABLE (never INTERNAL)");
  assertNoLeaks(load.failures.map((f) => f.details));
}

const acknowledgedAtLeast = (load: Load, n: number) =>
  until(`${n} writes are acknowledged`, () => load.acknowledged.size >= n, { timeoutMs: 120_000, everyMs: 100 });

/**
 * underLoad runs disrupt (which returns once the formation has settled)
 * while the load runs, and until 30 more writes are acknowledged after it;
 * start is when disrupt began.
 */
async function underLoad(label: string, disrupt: () => Promise<void>) {
  const health = watchHealth();
  const load = startLoad(label);
  let start = 0;
  try {
    await acknowledgedAtLeast(load, 30);
    start = Date.now();
    await disrupt();
    await acknowledgedAtLeast(load, load.acknowledged.size + 30);
  } finally {
    await load.stop();
    await health.stop();
  }
  return { load, health, start };
}

describe("failover under pg_auto_failover", { skip: missing }, () => {
  it("loses no acknowledged write and duplicates none when the primary's node is killed", async (t) => {
    const [node1, node2] = formation!.nodes;
    assert.equal((await primaryNode()).name, "node1");
    const [sync] = await node1.query<{ synchronous_standby_names: string }>("SHOW synchronous_standby_names");
    assert.notEqual(sync?.synchronous_standby_names, "", "commits wait for the standby: synchronous replication");
    const seen = service!.lines.length;
    const { load, health, start } = await underLoad("crash", async () => {
      await node1.crash();
      // With the monitor's default timings this takes about a minute.
      await formation!.waitFor({ node2: "wait_primary" }, 120_000);
      await until(
        "the service says it serves again",
        () => service!.lines.slice(seen).some((l) => l.msg === "database answers: serving"),
        { timeoutMs: 120_000, everyMs: 100 },
      );
    });
    assert.equal(service!.child.exitCode, null, "the same service process carried on");
    const writes = await checkWrites("crash", load);
    const figures = report(t, "primary killed", start, load, health, writes);
    assert.deepEqual(writes, { lost: 0, duplicates: 0, orphans: 0 });
    assertOnlyRetryable(load);
    assert.ok(figures.unavailableAnswered > 0, "the service answered UNAVAILABLE while there was no primary");
    assert.ok(figures.healthServingAgainAfterSeconds !== undefined, "health said NOT_SERVING, then SERVING again");
    assert.equal((await primaryNode()).name, node2.name);
    await service!.waitForLine((l) => l.msg === "primary found" && l.primary === `127.0.0.1:${node2.port}`);
  });

  it("takes the old primary back as a standby, and reads from it keep read-your-writes", async () => {
    const [node1] = formation!.nodes;
    node1.start();
    await formation!.waitFor({ node1: "secondary", node2: "primary" });
    await node1.query("SELECT pg_wal_replay_pause()");
    try {
      await until("replay is paused", async () => {
        const [row] = await node1.query<{ state: string }>("SELECT pg_get_wal_replay_pause_state() AS state");
        return row?.state === "paused";
      });
      const { post } = await sdk.posts.createPost({
        requestId: randomUUID(),
        post: { userId, title: "Written while node1 lags" },
      });
      const id = post!.id;
      for (let i = 0; i < 10; i++) {
        assert.equal((await sdk.posts.getPost({ id })).post?.title, "Written while node1 lags", "read-your-writes");
      }
      // Reads without a write position are spread over the replicas: the one that lags does not have the post.
      const missed = async () =>
        plain.posts.getPost({ id }).then(
          () => false,
          (e: unknown) => e instanceof BlogClientError && e.code === status.NOT_FOUND,
        );
      await until("a read served by the rejoined standby misses the post it has not replayed", missed, {
        timeoutMs: 30_000,
        everyMs: 100,
      });
    } finally {
      await node1.query("SELECT pg_wal_replay_resume()");
    }
  });

  it("switches over with pg_autoctl perform switchover, the SDK absorbing it with its retries", async (t) => {
    const { load, health, start } = await underLoad("switchover", async () => {
      await formation!.switchover();
      await formation!.waitFor({ node1: "primary", node2: "secondary" });
    });
    const writes = await checkWrites("switchover", load);
    const figures = report(t, "switchover", start, load, health, writes);
    assert.deepEqual(writes, { lost: 0, duplicates: 0, orphans: 0 });
    assertOnlyRetryable(load);
    // The SDK absorbed the switchover: no call through it failed (only the raw reader, without retries, may).
    const { CreatePost, GetPost, GetUser } = figures.failedAttempts;
    assert.deepEqual({ CreatePost, GetPost, GetUser }, { CreatePost: 0, GetPost: 0, GetUser: 0 });
    const [node1] = formation!.nodes;
    assert.equal((await primaryNode()).name, node1.name);
  });
});
