import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { Knex } from "knex";
import { pino } from "pino";
import { createDatabase } from "../src/db/knex.js";
import { migrateDown, migrateLatest, migrationStatus } from "../src/db/migrator.js";
import { createTestDatabase } from "./helpers.js";

let db: Knex;
let drop: () => Promise<void>;
before(async () => {
  const database = await createTestDatabase();
  drop = database.drop;
  db = createDatabase({ url: database.url, log: pino({ level: "silent" }) });
});
after(async () => {
  await db.destroy();
  await drop();
});

async function tables(): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { tablename: string }[] }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('users', 'posts') ORDER BY 1",
  );
  return rows.map((r) => r.tablename);
}

const first = "20261125090000_create_users_and_posts";
const second = "20261125100000_etags_idempotency_list_indexes";
const all = [first, second];

it("migrates up from empty, records names without extensions, and is idempotent", async () => {
  assert.deepEqual((await migrationStatus(db)).pending.includes(first), true);
  assert.deepEqual(await migrateLatest(db), all);
  assert.deepEqual(await tables(), ["posts", "users"]);
  assert.deepEqual(await migrateLatest(db), [], "a second run applies nothing");
  const { rows } = await db.raw<{ rows: { name: string }[] }>("SELECT name FROM knex_migrations");
  assert.ok(rows.some((r) => r.name === first));
  assert.deepEqual((await migrationStatus(db)).pending, []);
});

it("has the constraints the API validates, and the index on posts.user_id", async () => {
  const bad = [
    "INSERT INTO users (name, age) VALUES ('', 1)",
    "INSERT INTO users (name, age) VALUES (' padded ', 1)",
    "INSERT INTO users (name, age) VALUES ('A', 151)",
    "INSERT INTO users (name, age) VALUES (NULL, 1)",
    "INSERT INTO posts (user_id, title) VALUES (-1, 'T')",
  ];
  for (const sql of bad) await assert.rejects(db.raw(sql), /violates/, sql);
  const { rows } = await db.raw<{ rows: { indexdef: string }[] }>(
    "SELECT indexdef FROM pg_indexes WHERE tablename = 'posts' AND indexname = 'posts_user_id_id_index'",
  );
  assert.match(rows[0]?.indexdef ?? "", /\(user_id, id\)/);
  const { rows: fk } = await db.raw<{ rows: { confdeltype: string }[] }>(
    "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'posts'::regclass AND contype = 'f'",
  );
  assert.deepEqual(fk, [{ confdeltype: "c" }], "ON DELETE CASCADE");
});

it("migrates down one step at a time to nothing, and back up", async () => {
  await db("users").insert({ name: "Kept", age: 1 });
  assert.deepEqual(await migrateDown(db), [second]);
  assert.deepEqual((await migrationStatus(db)).applied, [first]);
  assert.equal((await db("users").first())?.name, "Kept", "going down a step keeps the data");
  assert.deepEqual(await migrateDown(db), [first]);
  assert.deepEqual(await tables(), []);
  assert.deepEqual((await migrationStatus(db)).applied, []);
  assert.deepEqual(await migrateLatest(db), all);
  assert.deepEqual(await tables(), ["posts", "users"]);
});

it("runs once when two migrators start together", async () => {
  await migrateDown(db);
  await migrateDown(db);
  const other = createDatabase({ url: db.client.config.connection.connectionString, log: pino({ level: "silent" }) });
  try {
    const results = await Promise.all([migrateLatest(db), migrateLatest(other)]);
    assert.deepEqual(results.flat(), all, "exactly one of them applied the migrations");
  } finally {
    await other.destroy();
  }
});
