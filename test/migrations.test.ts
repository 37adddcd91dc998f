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
const third = "20261203090000_posts_keyed_by_user";
const fourth = "20261204040000_change_feed";
const fifth = "20261204090000_batch_request_ids";
const sixth = "20261204140000_change_feed_statement_triggers";
const all = [first, second, third, fourth, fifth, sixth];

/** indexes are the definitions of a table's indexes, by name. */
async function indexes(table: string): Promise<Record<string, string>> {
  const { rows } = await db.raw<{ rows: { indexname: string; indexdef: string }[] }>(
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ?",
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef.replace(/^.* USING btree /, "")]));
}

it("migrates up from empty, records names without extensions, and is idempotent", async () => {
  assert.deepEqual((await migrationStatus(db)).pending.includes(first), true);
  assert.deepEqual(await migrateLatest(db), all);
  assert.deepEqual(await tables(), ["posts", "users"]);
  assert.deepEqual(await migrateLatest(db), [], "a second run applies nothing");
  const { rows } = await db.raw<{ rows: { name: string }[] }>("SELECT name FROM knex_migrations");
  assert.ok(rows.some((r) => r.name === first));
  assert.deepEqual((await migrationStatus(db)).pending, []);
});

it("has the constraints the API validates, and posts keyed by (user_id, id)", async () => {
  const bad = [
    "INSERT INTO users (name, age) VALUES ('', 1)",
    "INSERT INTO users (name, age) VALUES (' padded ', 1)",
    "INSERT INTO users (name, age) VALUES ('A', 151)",
    "INSERT INTO users (name, age) VALUES (NULL, 1)",
    "INSERT INTO posts (user_id, title) VALUES (-1, 'T')",
  ];
  for (const sql of bad) await assert.rejects(db.raw(sql), /violates/, sql);
  const posts = await indexes("posts");
  assert.equal(posts.posts_pkey, "(user_id, id)", "the primary key serves a user's posts in id order");
  assert.equal(posts.posts_id_index, "(id)", "GetPost by id alone");
  assert.equal(posts.posts_user_id_id_index, undefined, "the old (user_id, id) index is the primary key now");
  const { rows: fk } = await db.raw<{ rows: { confdeltype: string }[] }>(
    "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'posts'::regclass AND contype = 'f'",
  );
  assert.deepEqual(fk, [{ confdeltype: "c" }], "ON DELETE CASCADE");
});

it("every unique index on posts includes user_id, the column Citus distributes posts by", async () => {
  const { rows } = await db.raw<{ rows: { name: string; columns: string[] }[] }>(
    `SELECT i.indexrelid::regclass::text AS name,
            array(SELECT a.attname::text FROM unnest(i.indkey) AS k(n) JOIN pg_attribute a
                    ON a.attrelid = i.indrelid AND a.attnum = k.n) AS columns
       FROM pg_index i WHERE i.indrelid = 'posts'::regclass AND i.indisunique`,
  );
  assert.ok(rows.length > 0);
  for (const index of rows) assert.ok(index.columns.includes("user_id"), `${index.name}: ${index.columns.join(", ")}`);
});

it("migrates down one step at a time to nothing, and back up", async () => {
  await db("users").insert({ name: "Kept", age: 1 });
  const [user] = await db("users").select("id");
  await db("posts").insert({ userId: user.id, title: "Kept too" });
  const feedTriggers =
    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'posts'::regclass AND NOT tgisinternal ORDER BY 1";
  const triggerNames = async () =>
    (await db.raw<{ rows: { tgname: string }[] }>(feedTriggers)).rows.map((r) => r.tgname);
  assert.deepEqual(await triggerNames(), ["record_deletes", "record_inserts", "record_updates"]);
  assert.deepEqual(await migrateDown(db), [sixth]);
  assert.deepEqual(await triggerNames(), ["record_change"], "down to the row trigger");
  await db("posts").update({ title: "Kept too" });
  assert.equal(
    (await db("changes").where({ resource: "post", operation: "update" }).first())?.data?.title,
    "Kept too",
    "the row trigger writes the feed again",
  );
  assert.deepEqual(await migrateDown(db), [fifth]);
  assert.equal(await db.schema.hasColumn("idempotency_keys", "resource_ids"), false);
  assert.deepEqual(await migrateDown(db), [fourth]);
  await db("users").update({ age: 2 });
  assert.equal((await db("users").first())?.age, 2, "without the change feed's triggers, writes still work");
  assert.deepEqual(await migrateDown(db), [third]);
  assert.deepEqual(await indexes("posts").then((i) => [i.posts_pkey, i.posts_user_id_id_index]), [
    "(id)",
    "(user_id, id)",
  ]);
  assert.equal((await db("posts").first())?.title, "Kept too");
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
  for (const _ of all) await migrateDown(db);
  const other = createDatabase({ url: db.client.config.connection.connectionString, log: pino({ level: "silent" }) });
  try {
    const results = await Promise.all([migrateLatest(db), migrateLatest(other)]);
    assert.deepEqual(results.flat(), all, "exactly one of them applied the migrations");
  } finally {
    await other.destroy();
  }
});
