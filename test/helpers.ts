import { randomBytes } from "node:crypto";
import { credentials } from "@grpc/grpc-js";
import type { Knex } from "knex";
import pg from "pg";
import { pino } from "pino";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { observeStatements } from "../src/db/statements.js";
import { createClient } from "../src/client/transport.js";
import type { ClientError } from "../src/client/transport.js";
import { createServer } from "../src/server.js";
import type { BlogServer } from "../src/server.js";
import { until } from "./poll.js";

/** adminUrl is the server the tests run against; `npm test` always sets it. */
export function adminUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is unset: run the tests with `npm test`");
  return url;
}

/** admin runs work on a connection of its own to DATABASE_URL (creating and dropping databases, ...). */
export async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** createTestDatabase makes a database of its own for one test file and returns its URL and a dropper. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `blog_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      admin((c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)).then(() => {}),
  };
}

/** TestEnv is a migrated database, a listening server and clients over a real socket. */
export interface TestEnv {
  db: Knex;
  server: BlogServer;
  address: string;
  users: ReturnType<typeof createClient<typeof UserService>>;
  posts: ReturnType<typeof createClient<typeof PostService>>;
  health: ReturnType<typeof createClient<typeof Health>>;
  close(): Promise<void>;
}

/** startTestEnv builds the same server as main.ts on 127.0.0.1:0 against a fresh database. */
export async function startTestEnv(pool: { poolMax?: number; acquireTimeoutMs?: number } = {}): Promise<TestEnv> {
  const database = await createTestDatabase();
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const db = createDatabase({ url: database.url, poolMax: 5, log, ...pool });
  await migrateLatest(db);
  const server = createServer({ db, log });
  const address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
  const insecure = credentials.createInsecure();
  const users = createClient(UserService, address, insecure);
  const posts = createClient(PostService, address, insecure);
  const health = createClient(Health, address, insecure);
  return {
    db,
    server,
    address,
    users,
    posts,
    health,
    close: async () => {
      for (const client of [users, posts, health]) client.close();
      await server.shutdown(1000);
      await db.destroy();
      await database.drop();
    },
  };
}

/** countStatements counts the SQL statements Knex sends while work runs. */
export async function countStatements(db: Knex, work: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const listener = (q: { sql: string }) => statements.push(q.sql);
  db.on("query", listener);
  try {
    await work();
  } finally {
    db.off("query", listener);
  }
  return statements;
}

/**
 * distinctStatements runs each piece of work in turn and returns the distinct
 * SQL texts db sent for them all, and how many statements each piece sent.
 */
export async function distinctStatements(
  db: Knex,
  works: (() => Promise<unknown>)[],
): Promise<{ texts: string[]; counts: number[] }> {
  const texts = new Set<string>();
  const counts: number[] = [];
  for (const work of works) {
    const statements = await countStatements(db, work);
    counts.push(statements.length);
    for (const sql of statements) texts.add(sql);
  }
  return { texts: [...texts], counts };
}

/** grpcError asserts that a call failed and returns the grpc-js error for checks on code and details. */
export async function grpcError(call: Promise<unknown>): Promise<ClientError> {
  try {
    await call;
  } catch (error) {
    return error as ClientError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** metricValue reads one series of a server's metric (0 when it has no such series yet). */
export async function metricValue(server: BlogServer, name: string, labels: Record<string, string> = {}) {
  const { values } = await server.metrics.getSingleMetric(name)!.get();
  const found = values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return found?.value ?? 0;
}

/** queryOnce runs one statement on a connection of its own, outside any server's pool. */
export async function queryOnce<T>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/**
 * poolBackends are the server processes of the service's pooled connections
 * to the database at url (application_name "blog-service": not its health
 * probe, not the test's own connections).
 */
export function poolBackends(url: string) {
  return queryOnce<{ pid: number; state: string; waiting: boolean; query: string; queryStart: string }>(
    url,
    "SELECT pid, state, wait_event_type = 'Lock' AS waiting, query, query_start::text AS \"queryStart\" FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'blog-service'",
  );
}

/**
 * terminatePool ends every backend of the service's pool with
 * pg_terminate_backend and returns their pids. The pids are chosen first, in
 * a statement of their own: in one `WHERE ... AND pg_terminate_backend(pid)`
 * PostgreSQL may call the function before the other conditions, on every
 * backend of the server.
 */
export async function terminatePool(url: string): Promise<number[]> {
  const pids = (await poolBackends(url)).map((b) => b.pid);
  const rows = await queryOnce<{ pid: number; terminated: boolean }>(
    url,
    "SELECT pid, pg_terminate_backend(pid) AS terminated FROM unnest($1::int[]) AS pid",
    [pids],
  );
  return rows.filter((r) => r.terminated).map((r) => r.pid);
}

/**
 * untilStalled waits until a server stream whose client stopped reading has
 * stopped reading chunks too (it waits on HTTP/2 flow control): no statement
 * matching `chunk` runs on db, and none has started for a second. That is a
 * wait for a state, not an assertion; a stream still reading would make the
 * test that follows see a statement cut mid-way.
 */
export async function untilStalled(db: Knex, chunk: RegExp): Promise<void> {
  let running = 0;
  let started = 0;
  const stop = observeStatements(db, [
    {
      start: (s) => {
        if (chunk.test(s.sql)) (running++, started++);
      },
      end: (s) => {
        if (chunk.test(s.sql)) running--;
      },
    },
  ]);
  try {
    let seen = -1;
    let quiet = 0;
    await until(
      "the stream waits on its client, reading no chunk",
      () => {
        quiet = running === 0 && started === seen ? quiet + 1 : 0;
        seen = started;
        return quiet >= 10;
      },
      { everyMs: 100 },
    );
  } finally {
    stop();
  }
}
