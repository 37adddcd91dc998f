import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import cliProgress from "cli-progress";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { DataSet } from "../scenarios/scenario.js";

const chunkRows = 10_000;
const epoch = Date.UTC(2025, 0, 1);
const lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ";

/** Seeded text, kept free of tabs, newlines and backslashes (COPY's text format). */
const userName = (id: number) => `User ${id}`;
const postTitle = (userId: number, n: number) => `Post ${n} of user ${userId}`;
const postContent = (id: number) => `Post ${id}. ${lorem}${lorem}`.slice(0, 200);
const time = (seconds: number) => new Date(epoch + seconds * 1000).toISOString();

function* userRows(data: DataSet): Generator<string> {
  for (let start = 1; start <= data.users; start += chunkRows) {
    let chunk = "";
    for (let id = start; id < start + chunkRows && id <= data.users; id++) {
      const t = time(id);
      chunk += `${id}\t${userName(id)}\t${id % 100}\t${t}\t${t}\n`;
    }
    yield chunk;
  }
}

function* postRows(data: DataSet): Generator<string> {
  const perChunk = Math.max(1, Math.floor(chunkRows / data.postsPerUser));
  for (let start = 1; start <= data.users; start += perChunk) {
    let chunk = "";
    for (let userId = start; userId < start + perChunk && userId <= data.users; userId++) {
      for (let n = 1; n <= data.postsPerUser; n++) {
        const id = (userId - 1) * data.postsPerUser + n;
        const t = time(data.users + id);
        chunk += `${id}\t${userId}\t${postTitle(userId, n)}\t${postContent(id)}\t${t}\t${t}\n`;
      }
    }
    yield chunk;
  }
}

async function copy(client: pg.Client, sql: string, rows: Iterable<string>, progress: (lines: number) => void) {
  const counted = Readable.from(
    (function* () {
      for (const chunk of rows) {
        yield chunk;
        progress(chunk.split("\n").length - 1);
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
 * COPY, showing progress on stderr, then rebuilds indexes and analyzes.
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
    for (const index of indexes) await client.query(`DROP INDEX ${client.escapeIdentifier(index.name)}`);
    // The rows are consistent by construction: a superuser skips the per-row foreign key checks.
    if (rows[0]?.super) await client.query("SET session_replication_role = replica");
    const step = (lines: number) => bar.increment(lines);
    await copy(client, "COPY users (id, name, age, create_time, update_time) FROM STDIN", userRows(data), step);
    bar.update({ step: "posts" });
    await copy(
      client,
      "COPY posts (id, user_id, title, content, create_time, update_time) FROM STDIN",
      postRows(data),
      step,
    );
    await client.query("RESET session_replication_role");
    bar.update({ step: `${indexes.length} indexes, ANALYZE` });
    for (const index of indexes) await client.query(index.definition);
    await client.query("SELECT setval(pg_get_serial_sequence('users', 'id'), $1)", [data.users]);
    if (posts > 0) await client.query("SELECT setval(pg_get_serial_sequence('posts', 'id'), $1)", [posts]);
    await client.query("ANALYZE users, posts");
    bar.update({ step: "done" });
  } finally {
    bar.stop();
    await client.end();
  }
}
