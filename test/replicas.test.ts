// Three replicas of the service, as deployed (`node --import tsx src/main.ts`),
// on one fresh database, started at the same moment with MIGRATE_ON_START=1,
// behind one client that balances round_robin over a static address list.
// The service keeps nothing of its own between calls (page-token key and
// request ids live in PostgreSQL), so any replica may answer any call, and
// one may go away under load without losing an acknowledged write.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import path from "node:path";
import { after, before, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { BlogClientError, createBlogClient } from "../src/client/index.js";
import type { BlogClient } from "../src/client/index.js";
import { createTestDatabase } from "./helpers.js";
import { until } from "./poll.js";
import { startServiceProcess } from "./service-process.js";
import type { LogLine, ServiceProcess } from "./service-process.js";

const migrations = readdirSync(path.resolve(import.meta.dirname, "../src/db/migrations"))
  .filter((f) => /^\d{14}_\w+\.ts$/.test(f))
  .map((f) => path.basename(f, ".ts"))
  .sort();

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let replicas: ServiceProcess[] = [];
let client: BlogClient | undefined;

before(async () => {
  database = await createTestDatabase();
  const env = { DATABASE_URL: database.url, MIGRATE_ON_START: "1", DATABASE_POOL_MAX: "4", SHUTDOWN_GRACE_MS: "3000" };
  const started = await Promise.allSettled([1, 2, 3].map(() => startServiceProcess(env)));
  replicas = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s) => s.status === "rejected");
  if (failed !== undefined) throw failed.reason;
});

after(async () => {
  client?.close();
  for (const replica of replicas) replica.kill();
  await Promise.all(replicas.map((r) => r.exited));
  await database?.drop();
});

async function query<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: database.url });
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

const served = (replica: ServiceProcess) =>
  replica.lines.filter((l: LogLine) => typeof l.method === "string" && l.method.startsWith("/blog.v1.")).length;

it("migrates once when three replicas start together", async () => {
  const rows = await query<{ name: string; n: number }>(
    "SELECT name, count(*)::int AS n FROM knex_migrations GROUP BY name ORDER BY name",
  );
  assert.deepEqual(
    rows,
    migrations.map((name) => ({ name, n: 1 })),
  );
  const applied = replicas.flatMap((r) => r.lines.filter((l) => Array.isArray(l.applied)).map((l) => l.applied));
  assert.equal(applied.length, 3, "each replica logged its migration outcome");
  assert.deepEqual(applied.flat().sort(), migrations, "between them, each migration was applied by exactly one");
  for (const replica of replicas) {
    const errors = replica.lines.filter((l) => typeof l.level === "number" && l.level >= 50);
    assert.deepEqual(errors, [], "no replica logged an error");
  }
});

/** Load is a stream of creates and reads through the balanced client, the way a careful caller writes. */
interface Load {
  acknowledged: bigint[];
  failures: unknown[];
  stop(): Promise<void>;
}

function startLoad(blog: BlogClient, workers: number): Load {
  let running = true;
  const acknowledged: bigint[] = [];
  const failures: unknown[] = [];
  const work = async (worker: number) => {
    for (let i = 0; running; i++) {
      // CreateUser is not retried by the SDK (not idempotent by itself): the caller
      // retries UNAVAILABLE with the same request_id, so a retry never creates twice.
      const requestId = randomUUID();
      let id: bigint | undefined;
      for (let attempt = 1; id === undefined; attempt++) {
        try {
          const { user } = await blog.users.createUser({ requestId, user: { name: `w${worker} ${i}`, age: 30 } });
          id = user!.id;
        } catch (error) {
          if (!(error instanceof BlogClientError && error.code === status.UNAVAILABLE) || attempt === 20) {
            failures.push(error);
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
        }
      }
      acknowledged.push(id);
      // GetUser is retried on UNAVAILABLE by the SDK's retry policy.
      const read = await blog.users.getUser({ id }).catch((error: unknown) => failures.push(error));
      if (typeof read === "object" && read.user?.id !== id) failures.push(new Error(`read ${read.user?.id} for ${id}`));
    }
  };
  const all = Array.from({ length: workers }, (_, w) => work(w));
  return {
    acknowledged,
    failures,
    stop: async () => {
      running = false;
      await Promise.all(all);
    },
  };
}

it("balances calls over every replica, and keeps every acknowledged write when replicas stop under load", async () => {
  const target = `ipv4:${replicas.map((r) => r.address).join(",")}`;
  client = createBlogClient(target);
  const blog = client;
  await until("each replica has served a call", async () => {
    await blog.users.countUsers({});
    return replicas.every((r) => served(r) > 0);
  });

  const load = startLoad(blog, 4);
  try {
    const [graceful, killed, survivor] = replicas as [ServiceProcess, ServiceProcess, ServiceProcess];
    const acknowledgedAtLeast = (n: number) =>
      until(`${n} writes are acknowledged`, () => load.acknowledged.length >= n);
    await acknowledgedAtLeast(20);
    graceful.child.kill("SIGTERM");
    assert.deepEqual(await graceful.exited, { code: 0, signal: null }, "a graceful stop");
    await acknowledgedAtLeast(load.acknowledged.length + 30);
    killed.child.kill("SIGKILL");
    await killed.exited;
    const before = served(survivor);
    await acknowledgedAtLeast(load.acknowledged.length + 30);
    assert.ok(served(survivor) > before, "the last replica carries on");
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, [], "no call failed for good");

  const ids = load.acknowledged;
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 0; i < ids.length; i += 1000) {
    const { users } = await blog.users.batchGetUsers({ ids: ids.slice(i, i + 1000) });
    assert.equal(users.length, Math.min(1000, ids.length - i), "every acknowledged user is there");
  }
  const [{ n }] = (await query<{ n: number }>("SELECT count(*)::int AS n FROM users")) as [{ n: number }];
  assert.equal(n, ids.length, "and nothing was created twice by a retry");
});
