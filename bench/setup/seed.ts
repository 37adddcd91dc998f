import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import cliProgress from "cli-progress";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { createDatabase } from "../../src/db/knex.js";
import { migrateLatest } from "../../src/db/migrator.js";
import type { DataSet } from "../scenarios/scenario.js";
import { CopyBinary } from "./copy-binary.js";

const epoch = Date.UTC(2025, 0, 1);
const lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ";

const userName = (id: number) => `User ${id}`;
const postTitle = (userId: number, n: number) => `Post ${n} of user ${userId}`;
const postContent = (id: number) => `Post ${id}. ${lorem}${lorem}`.slice(0, 200);
const time = (seconds: number) => epoch + seconds * 1000;

type Chunk = { bytes: Buffer; rows: number };

function* userRows(data: DataSet): Generator<Chunk> {
  const out = new CopyBinary();
  for (let id = 1; id <= data.users; id++) {
    const t = time(id);
    out
      .row(5)
      .int8(id)
      .text(userName(id))
      .int4(id % 100)
      .timestamptz(t)
      .timestamptz(t);
    if (out.full) yield out.take();
  }
  yield out.take(true);
}

function* postRows(data: DataSet): Generator<Chunk> {
  const out = new CopyBinary();
  for (let userId = 1; userId <= data.users; userId++) {
    for (let n = 1; n <= data.postsPerUser; n++) {
      const id = (userId - 1) * data.postsPerUser + n;
      const t = time(data.users + id);
      out.row(6).int8(id).int8(userId).text(postTitle(userId, n)).text(postContent(id)).timestamptz(t).timestamptz(t);
      if (out.full) yield out.take();
    }
  }
  yield out.take(true);
}

async function copy(client: pg.Client, sql: string, chunks: Iterable<Chunk>, progress: (rows: number) => void) {
  const counted = Readable.from(
    (function* () {
      for (const chunk of chunks) {
        yield chunk.bytes;
        progress(chunk.rows);
      }
    })(),
  );
  await pipeline(counted, client.query(copyFrom(sql)));
}

/** Secondary indexes (not backing a constraint) are dropped during COPY and rebuilt after: much faster. */
async function secondaryIndexes(client: pg.Client): Promise<{ name: string; definition: string }[]> {
  const { rows } = await client.query<{ name: string; definition: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_class t ON t.oid = i.indrelid
      WHERE t.relname IN ('users', 'posts') AND t.relnamespace = current_schema()::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
  );
  return rows;
}

/**
 * seed fills the migrated, empty database with data.users users (ids 1..N)
 * and postsPerUser posts each (user u owns post ids (u-1)*M+1 .. u*M) through
 * binary COPY, showing progress on stderr, then rebuilds indexes and analyzes. The
 * tables are emptied and filled in one transaction, so COPY ... FREEZE writes
 * the rows already frozen and visible: the measured reads never pay for
 * setting hint bits, and no VACUUM is needed.
 */
export async function seed(url: string, data: DataSet): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: "bench-seed" });
  await client.connect();
  const posts = data.users * data.postsPerUser;
  const bar = new cliProgress.SingleBar(
    { format: "seeding {bar} {percentage}% | {value}/{total} rows | {step}", noTTYOutput: true, notTTYSchedule: 5000 },
    cliProgress.Presets.shades_classic,
  );
  try {
    const indexes = await secondaryIndexes(client);
    const { rows } = await client.query<{ super: boolean }>(
      "SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user",
    );
    bar.start(data.users + posts, 0, { step: "users" });
    await client.query("BEGIN");
    await client.query("TRUNCATE users, posts");
    for (const index of indexes) await client.query(`DROP INDEX ${client.escapeIdentifier(index.name)}`);
    // The rows are consistent by construction: a superuser skips the per-row foreign key checks.
    if (rows[0]?.super) await client.query("SET LOCAL session_replication_role = replica");
    const step = (count: number) => bar.increment(count);
    await copy(
      client,
      "COPY users (id, name, age, create_time, update_time) FROM STDIN (FORMAT binary, FREEZE)",
      userRows(data),
      step,
    );
    bar.update({ step: "posts" });
    await copy(
      client,
      "COPY posts (id, user_id, title, content, create_time, update_time) FROM STDIN (FORMAT binary, FREEZE)",
      postRows(data),
      step,
    );
    await client.query("COMMIT");
    // PostgreSQL's advice for bulk loads ("Populating a Database"): more memory for CREATE INDEX's sorts.
    await client.query("SET maintenance_work_mem = '512MB'");
    for (const [i, index] of indexes.entries()) {
      bar.update({ step: `index ${i + 1}/${indexes.length} ${index.name}` });
      await client.query(index.definition);
    }
    await client.query("SELECT setval(pg_get_serial_sequence('users', 'id'), $1)", [data.users]);
    if (posts > 0) await client.query("SELECT setval(pg_get_serial_sequence('posts', 'id'), $1)", [posts]);
    bar.update({ step: "ANALYZE" });
    await client.query("ANALYZE users, posts");
    bar.update({ step: "done" });
  } finally {
    bar.stop();
    await client.end();
  }
}

/** migrateAndSeed brings a bench run's fresh database to the latest schema, then seeds it with data. */
export async function migrateAndSeed(url: string, data: DataSet): Promise<void> {
  const knex = createDatabase({ url, poolMax: 2 });
  await migrateLatest(knex).finally(() => knex.destroy());
  await seed(url, data);
}
