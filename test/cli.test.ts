import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { createTestDatabase } from "./helpers.js";

// The `blog-service` command as a user runs it: bin/blog-service.js in a child
// process whose stdout is a pipe (not a terminal), against a database of its own.
const root = path.resolve(import.meta.dirname, "..");
const bin = path.join(root, "bin", "blog-service.js");
let database: Awaited<ReturnType<typeof createTestDatabase>>;
before(async () => {
  database = await createTestDatabase();
});
after(() => database.drop());

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...args: string[]): Promise<Result> {
  const env = { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: "warn" };
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { cwd: root, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

async function query<T>(sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

it("migrate status, up, status: one JSON line each", async () => {
  const files = await readdir(path.join(root, "src", "db", "migrations"));
  const names = files.filter((f) => /^\d{14}_\w+\.ts$/.test(f)).map((f) => f.replace(/\.ts$/, ""));
  assert.ok(names.length > 0);

  const fresh = await cli("migrate", "status");
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.deepEqual(JSON.parse(fresh.stdout), { status: { applied: [], pending: names } });

  const up = await cli("migrate", "up");
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(JSON.parse(up.stdout), { up: names });

  const done = await cli("migrate", "status");
  assert.deepEqual(JSON.parse(done.stdout), { status: { applied: names, pending: [] } });
});

it("seed --users 200 --posts-per-user 3 loads them in batches with progress lines", async () => {
  const result = await cli("seed", "--users", "200", "--posts-per-user", "3", "--batch-size", "50");
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.deepEqual(
    lines.slice(0, -1).map((l) => l.replace(/, [\d.]+ s$/, "")),
    [
      "seed users: 50/200 (25%), 150 posts",
      "seed users: 100/200 (50%), 300 posts",
      "seed users: 150/200 (75%), 450 posts",
      "seed users: 200/200 (100%), 600 posts",
    ],
    "one plain line per batch when stdout is not a terminal",
  );
  assert.match(lines.at(-1)!, /^seeded 200 users and 600 posts in [\d.]+ s$/);
  assert.ok(!result.stdout.includes("\r"), "no progress bar redraws in a pipe");

  const [users] = await query<{ count: number }>("SELECT count(*)::int AS count FROM users");
  assert.equal(users?.count, 200);
  const perUser = await query<{ posts: number; users: number }>(
    "SELECT posts, count(*)::int AS users FROM (SELECT count(p.id)::int AS posts FROM users u LEFT JOIN posts p ON p.user_id = u.id GROUP BY u.id) t GROUP BY posts",
  );
  assert.deepEqual(perUser, [{ posts: 3, users: 200 }], "every user has exactly 3 posts");
});

it("refuses bad usage with exit code 2 and the synopsis", async () => {
  const missing = await cli("seed", "--posts-per-user", "3");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--users is required\nusage: blog-service seed --users N/);
  const negative = await cli("seed", "--users", "-5");
  assert.equal(negative.code, 2);
  const unknown = await cli("frobnicate");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const help = await cli("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /\n {2}serve\n.*\n {2}migrate \[up\|down\|status\]\n.*\n {2}seed --users N /);
  const [users] = await query<{ count: number }>("SELECT count(*)::int AS count FROM users");
  assert.equal(users?.count, 200, "nothing was written");
});
