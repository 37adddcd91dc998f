// The service behind PgBouncer in transaction mode (Debian's `pgbouncer`):
// DATABASE_URL points at PgBouncer, which multiplexes the service's pool over
// two server connections, and DATABASE_MIGRATION_URL at PostgreSQL itself,
// because the migrator's session advisory lock needs a session of its own.
import { sdkError as rejection } from "./sdk-error.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { pino } from "pino";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { createBlogClient } from "../src/client/index.js";
import type { BlogClient } from "../src/client/index.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createTestDatabase } from "./helpers.js";
import { pgbouncerBin, startPgBouncer } from "./pgbouncer-process.js";
import type { PgBouncer } from "./pgbouncer-process.js";
import { until } from "./poll.js";
import { startServiceProcess } from "./service-process.js";
import type { ServiceProcess } from "./service-process.js";

const missing = pgbouncerBin === undefined ? "needs pgbouncer (apt-get install pgbouncer, as .ci/run does)" : undefined;
// CI installs it and sets REQUIRE_PGBOUNCER, so there its absence fails the test.
if (missing !== undefined && process.env.REQUIRE_PGBOUNCER) throw new Error(missing);

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let bouncer: PgBouncer | undefined;
let service: ServiceProcess | undefined;
let client: BlogClient;

before(async () => {
  if (missing !== undefined) return;
  database = await createTestDatabase();
  bouncer = await startPgBouncer(database.url);
  service = await startServiceProcess({
    DATABASE_URL: bouncer.url(database.url),
    DATABASE_MIGRATION_URL: database.url,
    MIGRATE_ON_START: "1",
    DATABASE_POOL_MAX: "8",
    // As README.md says for a PgBouncer that keeps no prepared statements (Debian's 1.18).
    DATABASE_PREPARED_STATEMENTS: "0",
  });
  client = createBlogClient(service.address);
});

after(async () => {
  client?.close();
  service?.kill();
  await service?.exited;
  await bouncer?.stop();
  await database?.drop();
});

async function direct<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: database.url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

describe("behind PgBouncer in transaction mode", { skip: missing }, () => {
  it("migrated through DATABASE_MIGRATION_URL, past PgBouncer", async () => {
    const rows = await direct<{ name: string }>("SELECT name FROM knex_migrations");
    assert.ok(rows.length >= 3);
    assert.ok(service!.lines.some((l) => Array.isArray(l.applied) && l.applied.length === rows.length));
  });

  it("runs the core flow: create, idempotent create, posts, FULL, pages, etags, export, delete", async () => {
    const requestId = randomUUID();
    const { user } = await client.users.createUser({ requestId, user: { name: "Ada", age: 36 } });
    const id = user!.id;
    const again = await client.users.createUser({ requestId, user: { name: "Ada", age: 36 } });
    assert.equal(again.user?.id, id, "the same request_id answers the first user");
    for (let i = 0; i < 5; i++) await client.posts.createPost({ post: { userId: id, title: `Post ${i}` } });
    await client.posts.batchCreatePosts({
      userId: id,
      requests: [5, 6, 7].map((i) => ({ post: { userId: id, title: `Post ${i}` } })),
    });
    const full = await client.users.getUser({ id, view: UserView.FULL });
    const titles = Array.from({ length: 8 }, (_, i) => `Post ${i}`);
    assert.deepEqual(
      full.user?.posts.map((p) => p.title),
      titles,
    );

    const listed: string[] = [];
    let pageToken = "";
    do {
      const page = await client.posts.listPosts({ userId: id, pageSize: 3, pageToken });
      listed.push(...page.posts.map((p) => p.title));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    assert.deepEqual(listed, titles, "three pages, nothing skipped or repeated");

    const mask = { paths: ["age"] };
    const updated = await client.users.updateUser({ user: { id, age: 37, etag: full.user!.etag }, updateMask: mask });
    assert.equal(updated.user?.age, 37);
    const stale = await rejection(
      client.users.updateUser({ user: { id, age: 38, etag: full.user!.etag }, updateMask: mask }),
    );
    assert.equal(stale.code, status.ABORTED);

    let exported = 0;
    for await (const batch of client.posts.exportPosts({ userId: id })) exported += batch.posts.length;
    assert.equal(exported, 8, "an export's chunks work through PgBouncer");
    const users: bigint[] = [];
    for await (const batch of client.users.exportUsers({})) users.push(...batch.users.map((u) => u.id));
    assert.deepEqual(users, [id]);

    const [first] = full.user!.posts;
    const staleDelete = await rejection(client.posts.deletePost({ id: first!.id, etag: "v999" }));
    assert.equal(staleDelete.code, status.FAILED_PRECONDITION);
    await client.posts.deletePost({ id: first!.id, etag: first!.etag });
    await client.users.deleteUser({ id, etag: updated.user!.etag });
    assert.equal((await rejection(client.users.getUser({ id }))).code, status.NOT_FOUND);
    assert.deepEqual((await client.posts.listPosts({ userId: id })).posts, [], "the posts went with the user");
  });

  it("serves many concurrent calls over two server connections", async () => {
    const { user } = await client.users.createUser({ user: { name: "Busy", age: 1 } });
    const calls = Array.from({ length: 60 }, (_, i) =>
      i % 2 === 0
        ? client.posts.createPost({ post: { userId: user!.id, title: `Concurrent ${i}` } })
        : client.users.getUser({ id: user!.id, view: UserView.FULL }),
    );
    await Promise.all(calls);
    assert.equal((await client.posts.listPosts({ userId: user!.id, pageSize: 100 })).posts.length, 30);
    const { clients, servers } = await bouncer!.connections(new URL(database.url).pathname.slice(1));
    assert.ok(
      servers <= 2 && clients > servers,
      `the service's pool (${clients} client connections) shares PgBouncer's ${servers} server connections`,
    );
  });

  it("cancels a statement past its deadline in PostgreSQL, through PgBouncer", async () => {
    const { user } = await client.users.createUser({ user: { name: "Locked", age: 1 } });
    const lock = new pg.Client({ connectionString: database.url });
    await lock.connect();
    try {
      await lock.query("BEGIN");
      await lock.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", [String(user!.id)]);
      const error = await rejection(
        client.users.updateUser(
          { user: { id: user!.id, age: 2 }, updateMask: { paths: ["age"] } },
          { deadline: Date.now() + 500 },
        ),
      );
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
      // pg_cancel_backend(pid) would not do: the pid the service sees is PgBouncer's own.
      await until("the UPDATE no longer waits in PostgreSQL while the lock is held", async () => {
        const waiting = await direct(
          "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query ILIKE 'update \"users\"%'",
        );
        return waiting.length === 0;
      });
    } finally {
      await lock.query("ROLLBACK").catch(() => {});
      await lock.end();
    }
  });

  it("refuses to migrate through the pooler, where the advisory lock would not hold", async () => {
    const pooled = createDatabase({ url: bouncer!.url(database.url), log: pino({ level: "silent" }) });
    try {
      await assert.rejects(
        migrateLatest(pooled),
        /migrations need a direct connection to PostgreSQL.*DATABASE_MIGRATION_URL/,
      );
    } finally {
      await pooled.destroy();
    }
  });
});

describe("prepared statements through PgBouncer in transaction mode", { skip: missing }, () => {
  let shared: PgBouncer;
  before(async () => (shared = await startPgBouncer(database.url, 1)));
  after(() => shared?.stop());

  /**
   * sameBackend runs one statement with a parameter on one client connection
   * of db's pool (twice, so that it is prepared when prepared statements are
   * on), then in a transaction on a second one. PgBouncer has one server
   * connection, so both client connections end up on the same backend.
   */
  async function sameBackend(db: ReturnType<typeof createDatabase>) {
    const sql = "SELECT ?::int AS n";
    await db.raw(sql, [1]);
    await db.raw(sql, [2]);
    const first = await db.client.acquireConnection();
    try {
      return await db.transaction(async (trx) => (await trx.raw(sql, [3])).rows);
    } finally {
      await db.client.releaseConnection(first);
    }
  }

  it("DATABASE_PREPARED_STATEMENTS=1 breaks: PgBouncer 1.18 hands one client's prepared statements to another", async () => {
    const db = createDatabase({ url: shared.url(database.url), poolMax: 2, preparedStatements: "on" });
    try {
      await assert.rejects(sameBackend(db), (e) => (e as { code?: string }).code === "42P05");
    } finally {
      await db.destroy();
    }
  });

  it("auto (the default) finds the pooler, prepares nothing and says so", async () => {
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
    const db = createDatabase({ url: shared.url(database.url), poolMax: 2, log });
    try {
      assert.deepEqual(await sameBackend(db), [{ n: 3 }]);
      const said = lines.map((l) => JSON.parse(l) as { msg: string }).filter((l) => /not prepared/.test(l.msg));
      assert.equal(said.length, 1, lines.join(""));
    } finally {
      await db.destroy();
    }
  });
});
