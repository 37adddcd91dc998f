// The database goes away under a running service (a clean stop, then a
// kill -9) and comes back on the same port: calls fail fast with UNAVAILABLE,
// health says NOT_SERVING meanwhile, and the same service heals by itself.
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, it } from "node:test";
import { credentials, status } from "@grpc/grpc-js";
import type { Knex } from "knex";
import pg from "pg";
import { pino } from "pino";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { startEmbeddedPostgres } from "../src/dev/embedded-postgres.js";
import type { EmbeddedPostgres } from "../src/dev/embedded-postgres.js";
import { poolOf } from "../src/db/knex-internals.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createClient } from "../src/client/transport.js";
import type { ClientError } from "../src/client/transport.js";
import { createServer } from "../src/server.js";
import type { BlogServer } from "../src/server.js";
import { countStatements, grpcError, metricValue, poolBackends, untilStalled } from "./helpers.js";
import { assertNoLeaks } from "./leaks.js";
import { alive, until } from "./poll.js";
import { slowReader } from "./slow-reader.js";

/** Every call carries a deadline: a call that hangs fails the test as DEADLINE_EXCEEDED, not by timing. */
const callDeadline = () => Date.now() + 5_000;

let dir: string;
let dataDir: string;
let port: number;
let postgres: EmbeddedPostgres;
let db: Knex;
let server: BlogServer;
let users: ReturnType<typeof createClient<typeof UserService>>;
let health: ReturnType<typeof createClient<typeof Health>>;
let knownId: bigint;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "blog-outage-"));
  await chmod(dir, 0o755); // the postgres OS user (when we are root) must reach the data dir
  dataDir = path.join(dir, "pg");
  postgres = await startEmbeddedPostgres({ dataDir });
  port = postgres.port;
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  db = createDatabase({ url: postgres.url, poolMax: 4, log });
  await migrateLatest(db);
  server = createServer({ db, log, dbHealthIntervalMs: 100 });
  const address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
  users = createClient(UserService, address, credentials.createInsecure());
  health = createClient(Health, address, credentials.createInsecure());
  knownId = (await users.createUser({ user: { name: "Known", age: 42 } })).user!.id;
});

after(async () => {
  users?.close();
  health?.close();
  await server?.shutdown(1000);
  await db?.destroy();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** caller keeps calling (writes, reads, raw SQL, listings) until stopped, and records every failure. */
function caller() {
  const failures: ClientError[] = [];
  let ok = 0;
  let running = true;
  const calls = [
    () => users.createUser({ user: { name: "Caller", age: 1 } }, { deadline: callDeadline() }),
    () => users.getUser({ id: knownId }, { deadline: callDeadline() }),
    () => users.countUsers({}, { deadline: callDeadline() }),
    () => users.listUsers({ pageSize: 2 }, { deadline: callDeadline() }),
  ];
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await calls[i % calls.length]!().then(
        () => ok++,
        (error: ClientError) => failures.push(error),
      );
      await delay(10); // pacing: a failing call returns at once
    }
  })();
  return {
    failures,
    succeeded: () => ok,
    stop: async () => {
      running = false;
      await loop;
      return failures;
    },
  };
}

async function servingStatus(service: string): Promise<ServingStatus> {
  return (await health.check({ service }, { deadline: callDeadline() })).status;
}

async function expectOutage(calling: ReturnType<typeof caller>) {
  await until("health reports NOT_SERVING", async () => (await servingStatus("")) === ServingStatus.NOT_SERVING);
  for (const service of ["blog.v1.UserService", "blog.v1.PostService"]) {
    assert.equal(await servingStatus(service), ServingStatus.NOT_SERVING, service);
  }
  const failed = await Promise.all([
    grpcError(users.getUser({ id: knownId }, { deadline: callDeadline() })),
    grpcError(users.createUser({ user: { name: "Away", age: 2 } }, { deadline: callDeadline() })),
    grpcError(users.countUsers({}, { deadline: callDeadline() })),
  ]);
  for (const error of failed) {
    assert.equal(error.code, status.UNAVAILABLE, `${status[error.code]}: ${error.details}`);
    assert.equal(error.details, "the request could not reach the database; retry");
  }
  const before = calling.failures.length;
  await until("the caller sees failures while the database is away", () => calling.failures.length >= before + 4);
}

async function expectRecovery(calling: ReturnType<typeof caller>) {
  await until("health reports SERVING again", async () => (await servingStatus("")) === ServingStatus.SERVING);
  const succeeded = calling.succeeded();
  await until("the caller's calls succeed again", () => calling.succeeded() >= succeeded + 8);
}

/** expectCorrectAnswers runs once the caller has stopped: reads and writes agree with the database. */
async function expectCorrectAnswers() {
  const { user } = await users.getUser({ id: knownId }, { deadline: callDeadline() });
  assert.equal(user?.name, "Known");
  const created = await users.createUser({ user: { name: "After", age: 3 } }, { deadline: callDeadline() });
  assert.equal((await users.getUser({ id: created.user!.id })).user?.name, "After");
  const direct = new pg.Client(postgres.url);
  await direct.connect();
  try {
    const { rows } = await direct.query<{ count: string }>("SELECT count(*) FROM users");
    assert.equal((await users.countUsers({})).count, BigInt(rows[0]!.count));
  } finally {
    await direct.end();
  }
}

function assertOnlyUnavailable(failures: ClientError[]) {
  assert.ok(failures.length > 0, "some calls failed while the database was away");
  assertNoLeaks(failures.map((f) => f.details));
  const other = failures.filter((f) => f.code !== status.UNAVAILABLE);
  assert.deepEqual(
    other.map((f) => `${status[f.code]}: ${f.details}`),
    [],
    "every failure is UNAVAILABLE",
  );
}

it("a stopped database: UNAVAILABLE and NOT_SERVING, then SERVING once it is back", { timeout: 90_000 }, async () => {
  assert.equal(await servingStatus(""), ServingStatus.SERVING);
  const calling = caller();
  try {
    await until("the caller's calls succeed", () => calling.succeeded() >= 4);
    await postgres.stop();
    await expectOutage(calling);
    postgres = await startEmbeddedPostgres({ dataDir, port });
    await expectRecovery(calling);
  } finally {
    assertOnlyUnavailable(await calling.stop());
  }
  await expectCorrectAnswers();
});

it("a killed database (kill -9, a call in flight): the same, after crash recovery", { timeout: 90_000 }, async () => {
  assert.equal(await servingStatus(""), ServingStatus.SERVING);
  // A call held on a lock is mid-statement when PostgreSQL dies under it.
  const locker = new pg.Client(postgres.url);
  await locker.connect();
  locker.on("error", () => {}); // its server is about to die
  await locker.query("BEGIN");
  await locker.query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
  let early: ClientError | undefined;
  const inFlight = grpcError(users.countUsers({}, { deadline: callDeadline() })).then((error) => (early = error));
  await until("the call waits on the lock", async () => {
    if (early !== undefined) assert.fail(`the call ended before the kill: ${status[early.code]}: ${early.details}`);
    const { rows } = await locker.query(
      "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%count(*)%'",
    );
    return rows.length > 0;
  });
  const { rows } = await locker.query<{ pid: number }>("SELECT pid FROM pg_stat_activity");
  const postmaster = Number((await readFile(path.join(postgres.dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
  const calling = caller();
  try {
    process.kill(postmaster, "SIGKILL");
    const error = await inFlight;
    assert.equal(error.code, status.UNAVAILABLE, `${status[error.code]}: ${error.details}`);
    await expectOutage(calling);
    // Its backends notice the postmaster's death and exit; only then may a new one use the data dir.
    await until("the killed cluster's processes are gone", () =>
      [postmaster, ...rows.map((r) => r.pid)].every((pid) => !alive(pid)),
    );
    await locker.end().catch(() => {});
    postgres = await startEmbeddedPostgres({ dataDir, port });
    await expectRecovery(calling);
  } finally {
    assertOnlyUnavailable(await calling.stop());
  }
  await expectCorrectAnswers();
});

/** exportedIds seeds (once) 40,000 users of 200-character names, age 77: megabytes no client buffers whole. */
let exportedIds: bigint[] | undefined;
async function exportRows(): Promise<bigint[]> {
  if (exportedIds === undefined) {
    await db.raw(
      "INSERT INTO users (name, age) SELECT rpad('export ' || g, 200, '.'), 77 FROM generate_series(1, 40000) g",
    );
    exportedIds = (await db("users").where("age", 77).orderBy("id").select("id")).map((r: { id: bigint }) => r.id);
  }
  return exportedIds;
}

const exportStatement = /select "users"\.\*/;
const exportIds = (messages: { users: { id: bigint }[] }[]) => messages.flatMap((m) => m.users.map((u) => u.id));

/** expectPoolBack waits until health says SERVING and the pool has nothing checked out. */
async function expectPoolBack() {
  await until("health reports SERVING again", async () => (await servingStatus("")) === ServingStatus.SERVING);
  await until("the pool has no connection checked out", () => poolOf(db)!.numUsed() === 0);
}

it(
  "a restart while an export waits on its slow client: the export goes on where it stopped, every row once",
  {
    timeout: 90_000,
  },
  async () => {
    const expected = await exportRows();
    const reader = slowReader((options) => users.exportUsers({ filter: "age = 77" }, options));
    try {
      reader.readOne();
      await until("the first message", () => reader.messages.length === 1);
      // The client reads no more: the export waits on flow control, between two chunks, holding no connection.
      await untilStalled(db, exportStatement);
      assert.equal(poolOf(db)!.numUsed(), 0);
      await postgres.stop();
      postgres = await startEmbeddedPostgres({ dataDir, port });
      await expectPoolBack();
      const statements = await countStatements(db, async () => {
        assert.equal(await reader.readToEnd(), undefined, "the export ends OK");
      });
      assert.ok(
        statements.some((sql) => exportStatement.test(sql)),
        "chunks were read after the restart",
      );
      assert.deepEqual(exportIds(reader.messages), expected, "every row once, in order");
      await until("the pool has no connection checked out", () => poolOf(db)!.numUsed() === 0);
    } finally {
      await reader.stop();
    }
  },
);

it(
  "a database stopped under an export's chunk statement: UNAVAILABLE at once, then nothing held and SERVING",
  {
    timeout: 90_000,
  },
  async () => {
    const expected = await exportRows();
    const locker = new pg.Client(postgres.url);
    await locker.connect();
    locker.on("error", () => {}); // its server is about to stop
    const reader = slowReader((options) => users.exportUsers({ filter: "age = 77" }, options));
    try {
      reader.readOne();
      await until("the first message", () => reader.messages.length === 1);
      // The slow reader takes one message now and then; the next chunk statement waits on this lock.
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
      await until("a chunk statement of the export waits on the lock", async () => {
        reader.readOne();
        if (reader.state.error !== undefined || reader.state.ended) assert.fail("the export ended before the stop");
        return (await poolBackends(postgres.url)).some((b) => b.waiting && exportStatement.test(b.query));
      });
      await postgres.stop();
      // Still stopped: the export ends now, after the messages already sent, not once the database is back.
      await until("the export ends", () => {
        reader.readOne();
        return reader.state.error !== undefined || reader.state.ended;
      });
      const error = reader.state.error;
      assert.equal(error?.code, status.UNAVAILABLE, `${String(error?.code)}: ${error?.details}`);
      assert.ok(
        [
          "the request found the database shutting down; retry",
          "the request could not reach the database; retry",
        ].includes(error.details),
        error.details,
      );
      const ids = exportIds(reader.messages);
      assert.deepEqual(ids, expected.slice(0, ids.length), "what arrived is the start of the export, each row once");
      assert.ok(ids.length < expected.length);
      await until("the pool has no connection checked out", () => poolOf(db)!.numUsed() === 0);
      await until("health reports NOT_SERVING", async () => (await servingStatus("")) === ServingStatus.NOT_SERVING);
      postgres = await startEmbeddedPostgres({ dataDir, port });
      await expectPoolBack();
      assert.equal(await metricValue(server, "db_client_connection_count", { state: "used" }), 0);
      let exported = 0;
      for await (const message of users.exportUsers({ filter: "age = 77" }, { deadline: Date.now() + 30_000 })) {
        exported += message.users.length;
      }
      assert.equal(exported, expected.length);
    } finally {
      await reader.stop();
      await locker.end().catch(() => {});
    }
  },
);
