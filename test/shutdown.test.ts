import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { credentials, status } from "@grpc/grpc-js";
import pg from "pg";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { createClient } from "../src/client/transport.js";
import { createTestDatabase, grpcError, poolBackends, queryOnce } from "./helpers.js";
import { startServiceProcess } from "./service-process.js";
import type { ServiceProcess } from "./service-process.js";
import { slowReader } from "./slow-reader.js";
import type { SlowReader } from "./slow-reader.js";

// The real service process (src/main.ts) receives SIGTERM while two
// UpdateUser calls wait on row locks held by this test: a load that is in
// flight for as long as the test wants, with no sleeps.
const graceMs = 20_000;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let service: ServiceProcess | undefined;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  service?.kill();
  await database?.drop();
});

const query = <T>(sql: string, values: unknown[] = []) => queryOnce<T>(database.url, sql, values);

/** within fails the test instead of hanging when promise takes longer than ms. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const waitingForLocks = async () =>
  (
    await query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
  )[0]!.n;

it("on SIGTERM: NOT_SERVING first, new calls UNAVAILABLE, calls in flight finish OK, exit 0 with the pool closed", async () => {
  service = await startServiceProcess({ DATABASE_URL: database.url, SHUTDOWN_GRACE_MS: String(graceMs) });
  const insecure = credentials.createInsecure();
  const own = { "grpc.use_local_subchannel_pool": 1 };
  const users = createClient(UserService, service.address, insecure, own);
  const health = createClient(Health, service.address, insecure, own);
  const locker = new pg.Client({ connectionString: database.url });
  await locker.connect();
  try {
    const ids: bigint[] = [];
    for (const name of ["Ada", "Grace"]) ids.push((await users.createUser({ user: { name, age: 30 } })).user!.id);
    const watch = health.watch({ service: "" })[Symbol.asyncIterator]();
    assert.equal((await within("first health status", 5000, watch.next())).value?.status, ServingStatus.SERVING);

    await locker.query("BEGIN");
    await locker.query("SELECT id FROM users FOR UPDATE");
    const settled: string[] = [];
    const inFlight = ids.map((id, i) =>
      users
        .updateUser({ user: { id, age: 40 + i }, updateMask: { paths: ["age"] } }, { deadline: Date.now() + 60_000 })
        .finally(() => settled.push(String(id))),
    );
    await eventually("both updates wait for the row locks", async () => (await waitingForLocks()) === 2);

    service.child.kill("SIGTERM");
    const flipped = await within("health after SIGTERM", 10_000, watch.next());
    assert.equal(flipped.value?.status, ServingStatus.NOT_SERVING);
    assert.deepEqual(settled, [], "health flipped before the calls in flight ended");

    // New calls: on the connection the calls in flight use, and on a new one.
    const refused = await grpcError(users.countUsers({}, { deadline: Date.now() + 5000 }));
    assert.equal(refused.code, status.UNAVAILABLE, refused.message);
    const fresh = createClient(UserService, service.address, insecure, own);
    try {
      const error = await grpcError(fresh.countUsers({}, { deadline: Date.now() + 5000 }));
      assert.equal(error.code, status.UNAVAILABLE, error.message);
    } finally {
      fresh.close();
    }
    assert.deepEqual(settled, [], "the calls in flight are still running");
    assert.equal(await waitingForLocks(), 2);

    await locker.query("COMMIT");
    const answers = await within("the calls in flight", 10_000, Promise.all(inFlight));
    assert.deepEqual(
      answers.map((a) => a.user?.age),
      [40, 41],
    );
    assert.equal((await within("end of the health watch", 10_000, watch.next())).done, true, "the watch ends OK");

    const { code, signal } = await within("exit", graceMs + 10_000, service.exited);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    const messages = service.lines.map((l) => l.msg);
    assert.ok(messages.includes("shutting down"));
    assert.ok(messages.includes("stopped"), "the pool was closed (stopped is logged after it)");
    assert.ok(
      !service.lines.some((l) => String(l.msg).startsWith("shutdown grace period is over")),
      "no call was cut: everything ended within the grace period",
    );
    const updates = service.lines.filter((l) => l.method === "/blog.v1.UserService/UpdateUser");
    assert.deepEqual(
      updates.map((l) => l.grpcCode),
      ["OK", "OK"],
    );
    await eventually("no connection of the service is left", async () => {
      const left = await query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'blog-service%'",
        [new URL(database.url).pathname.slice(1)],
      );
      return left[0]!.n === 0;
    });
  } finally {
    await locker.end();
    users.close();
    health.close();
  }
});

const grace = 2_000;

/**
 * sigtermDuringExport starts the service with a 2 s grace period, lets stall
 * leave an ExportUsers of 40,000 users (8 MB: far more than a client's buffer
 * and the HTTP/2 windows) hanging, sends SIGTERM, and checks that the process
 * exits 0 once the grace period is over, logging "stopped" after closing its
 * pool, that the client gets the status the log records, and that no
 * connection of the service is left.
 */
async function sigtermDuringExport(
  stall: (reader: SlowReader<{ users: unknown[] }>) => Promise<void>,
): Promise<{ messagesSent: number }> {
  const stalling = await startServiceProcess({ DATABASE_URL: database.url, SHUTDOWN_GRACE_MS: String(grace) });
  service = stalling;
  const insecure = credentials.createInsecure();
  const users = createClient(UserService, stalling.address, insecure, { "grpc.use_local_subchannel_pool": 1 });
  try {
    const [{ n }] = (await query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE age = 77")) as [
      { n: number },
    ];
    if (n === 0) {
      await query(
        "INSERT INTO users (name, age) SELECT rpad('export ' || g, 200, '.'), 77 FROM generate_series(1, 40000) g",
      );
    }
    const reader = slowReader((options) => users.exportUsers({ filter: "age = 77" }, options));
    await stall(reader);
    stalling.child.kill("SIGTERM");
    const { code, signal } = await within("exit", grace + 15_000, stalling.exited);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    const messages = stalling.lines.map((l) => l.msg);
    assert.ok(messages.includes("shutting down"));
    assert.ok(messages.includes("shutdown grace period is over: cancelling the calls still running"));
    assert.ok(messages.includes("stopped"), "the pool was closed (stopped is logged after it)");
    // The client gets a status for the export (CANCELLED today: grpc-js's forceShutdown resets the
    // streams still open), the one the log line records.
    const error = await within("the export's status", 10_000, reader.readToEnd());
    assert.ok(error !== undefined, "the export did not end OK");
    const [line, ...others] = stalling.lines.filter((l) => l.method === "/blog.v1.UserService/ExportUsers");
    assert.deepEqual(others, []);
    assert.equal(line?.grpcStatus, error.code, `the client got ${status[error.code]}, the log says ${line?.grpcCode}`);
    await eventually(
      "no connection of the service is left",
      async () => (await poolBackends(database.url)).length === 0,
    );
    return { messagesSent: line.messagesSent as number };
  } finally {
    users.close();
  }
}

it("on SIGTERM during an export whose client stopped reading: exits 0 after the grace period, logging stopped", async () => {
  const { messagesSent } = await sigtermDuringExport(async (reader) => {
    reader.readOne();
    await eventually("the first message", async () => reader.messages.length === 1);
    // The client reads no more. Once no statement of the service has run for a while, the export waits on it.
    let last = "";
    let quiet = 0;
    await eventually("the export waits on its client, reading no chunk", async () => {
      const backends = await poolBackends(database.url);
      const latest =
        backends
          .map((b) => b.queryStart)
          .sort()
          .at(-1) ?? "";
      quiet = backends.every((b) => b.state === "idle") && latest === last ? quiet + 1 : 0;
      last = latest;
      return quiet >= 10;
    });
  });
  assert.ok(messagesSent < 80, `the server sent ${messagesSent} of 80 messages`);
});

it("on SIGTERM while an export's chunk statement waits on a lock: the statement is cancelled, the same clean exit", async () => {
  const locker = new pg.Client({ connectionString: database.url });
  await locker.connect();
  try {
    const { messagesSent } = await sigtermDuringExport(async (reader) => {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
      reader.readOne();
      await eventually("the export's first chunk statement waits on the lock", async () =>
        (await poolBackends(database.url)).some((b) => b.waiting && b.query.includes('select "users".*')),
      );
    });
    assert.equal(messagesSent, 0);
    // The lock was held throughout: the pool could close only because the statement was cancelled.
    assert.equal((await locker.query("SELECT 1 AS one")).rows[0]?.one, 1);
  } finally {
    await locker.end();
  }
});
