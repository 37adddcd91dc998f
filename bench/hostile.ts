import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Histogram } from "hdr-histogram-js";
import pg from "pg";
import { pino } from "pino";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { LoadGenerator } from "./load/generator.js";
import { newHistogram } from "./load/histogram.js";
import { batchLoop, stallExport } from "./load/hostile.js";
import type { BatchCounts, StalledExport } from "./load/hostile.js";
import { machine } from "./report/machine.js";
import { PeakMemory } from "./servers/memory.js";
import { startServer } from "./servers/spawn.js";
import { postgresVersion, provisionDatabase } from "./setup/database.js";
import { seed } from "./setup/seed.js";

// `npm run bench:hostile` (issue 12): GetUser's p99 and the server's peak RSS
// with and without hostile load, in interleaved rounds against one service
// process as deployed. Hostile load is 10 clients that each hold an
// ExportPosts of large posts stalled on HTTP/2 flow control, and 10 clients
// that loop BatchGetUsers view FULL of users with posts of 10,000 characters
// (replies of about 3 MB, under the 4 MiB send limit; every fourth one asks
// for about 5 MB and must get RESOURCE_EXHAUSTED). GetUser runs in a load
// generator thread, apart from the hostile clients. Exits 1 on any GetUser
// error, any unexpected BatchGetUsers answer, or an export that did not stay
// stalled; never on timings. --quick: small data, short windows, one round,
// printed and not written.

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    concurrency: { type: "string", default: "16" },
    duration: { type: "string" },
    rounds: { type: "string" },
    out: { type: "string", default: "bench/results" },
  },
});
const quick = values.quick;
const concurrency = Number(values.concurrency);
const durationMs = Number(values.duration ?? (quick ? 2000 : 10_000));
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const data = { users: quick ? 1000 : 10_000, postsPerUser: 10 };
const large = { users: quick ? 24 : 40, posts: 30, characters: 10_000 };
const hostileClients = 10;
const problems: string[] = [];

/** addLargeUsers adds users with `large.posts` posts of `large.characters` characters each, after the seeded ones. */
async function addLargeUsers(url: string): Promise<bigint[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>(
      "INSERT INTO users (name, age) SELECT 'Long writer ' || g, 40 FROM generate_series(1, $1::int) g RETURNING id",
      [large.users],
    );
    await client.query(
      `INSERT INTO posts (user_id, title, content)
       SELECT u, 'Long post ' || n, rpad('', $2::int, md5(u::text || '/' || n))
         FROM unnest($1::int8[]) u, generate_series(1, $3::int) n`,
      [rows.map((r) => r.id), large.characters, large.posts],
    );
    await client.query("ANALYZE users, posts");
    return rows.map((r) => BigInt(r.id));
  } finally {
    await client.end();
  }
}

const pick = (ids: bigint[], n: number) => [...ids].sort(() => Math.random() - 0.5).slice(0, n);

/** Hostile is the hostile load while it runs. */
interface Hostile {
  exports: StalledExport[];
  stop(): Promise<BatchCounts[]>;
}

async function startHostile(address: string, largeIds: bigint[], firstLargePost: bigint): Promise<Hostile> {
  const exports = Array.from({ length: hostileClients }, () => stallExport(address, `id >= ${firstLargePost}`));
  let stopped = false;
  const loops = Array.from({ length: hostileClients }, () =>
    batchLoop(
      address,
      () => pick(largeIds, 10), // about 3.0 MB
      () => pick(largeIds, 16), // about 4.9 MB: over 4 MiB
      () => stopped,
    ),
  );
  const deadline = Date.now() + 30_000;
  while (!exports.every((e) => e.headers || e.ended !== undefined) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    exports,
    stop: async () => {
      stopped = true;
      const counts = await Promise.all(loops);
      for (const e of exports) e.close();
      return counts;
    },
  };
}

interface Phase {
  hostile: boolean;
  calls: number;
  seconds: number;
  histogram: Histogram;
  peakRss: number | undefined;
  batches?: BatchCounts[];
}

const database = await provisionDatabase(process.env.DATABASE_URL);
const phases: Phase[] = [];
let postgres = "";
try {
  const db = createDatabase({ url: database.url, poolMax: 2, log: pino({ level: "silent" }) });
  await migrateLatest(db).finally(() => db.destroy());
  await seed(database.url, data);
  const largeIds = await addLargeUsers(database.url);
  const firstLargePost = BigInt(data.users * data.postsPerUser + 1);
  postgres = await postgresVersion(database.url);
  const server = await startServer("service", new URL("./servers/service.ts", import.meta.url), {
    env: { DATABASE_URL: database.url, LOG_LEVEL: "info", METRICS_ADDRESS: "", MIGRATE_ON_START: "0", LOG_SQL: "0" },
    nodeArgs: [],
  });
  const load = LoadGenerator.start(1, { data, databaseUrl: database.url, pool: 1 });
  const target = { implementation: "service" as const, address: server.address };
  try {
    await load.run(target, "get-user-basic", concurrency, quick ? 1000 : 3000, false); // warm-up
    for (let round = 1; round <= rounds; round++) {
      for (const hostile of [false, true]) {
        const peak = new PeakMemory(server.pid);
        const running = hostile ? await startHostile(server.address, largeIds, firstLargePost) : undefined;
        const result = await load.run(target, "get-user-basic", concurrency, durationMs, true);
        const batches = await running?.stop();
        const peakRss = peak.stop();
        const label = hostile ? `round ${round} with hostile load` : `round ${round} without`;
        if (result.errors > 0)
          problems.push(`${label}: ${result.errors} GetUser calls failed, e.g. ${result.errorSample}`);
        for (const [i, e] of (running?.exports ?? []).entries()) {
          if (!e.headers || e.dataBytes > 0 || e.ended !== undefined) {
            problems.push(
              `${label}: export ${i} did not stay stalled (headers ${e.headers}, ${e.dataBytes} bytes, ended: ${e.ended})`,
            );
          }
        }
        for (const unexpected of new Set(batches?.flatMap((b) => b.unexpected)))
          problems.push(`${label}: ${unexpected}`);
        const histogram = result.histogram!;
        const seconds = result.elapsedMs / 1000;
        phases.push({ hostile, calls: result.calls, seconds, histogram, peakRss, batches });
        const ms = (p: number) => (histogram.getValueAtPercentile(p) / 1000).toFixed(2);
        console.log(
          `${label}: GetUser ${Math.round(result.calls / seconds)} calls/s, p50 ${ms(50)} ms, p99 ${ms(99)} ms, ` +
            `server peak RSS ${peakRss === undefined ? "?" : Math.round(peakRss / 2 ** 20)} MB`,
        );
      }
    }
  } finally {
    await load.close();
    await server.stop();
  }
} finally {
  await database.close();
}

/** summary merges the phases of one kind. */
function summary(hostile: boolean) {
  const chosen = phases.filter((p) => p.hostile === hostile);
  const histogram = newHistogram();
  for (const p of chosen) histogram.add(p.histogram);
  const calls = chosen.reduce((n, p) => n + p.calls, 0);
  const seconds = chosen.reduce((n, p) => n + p.seconds, 0);
  const peakMb = Math.round(Math.max(...chosen.map((p) => p.peakRss ?? 0)) / 2 ** 20);
  const batches = chosen.flatMap((p) => p.batches ?? []);
  return {
    rate: calls / seconds,
    p50: histogram.getValueAtPercentile(50) / 1000,
    p99: histogram.getValueAtPercentile(99) / 1000,
    p99s: chosen.map((p) => (p.histogram.getValueAtPercentile(99) / 1000).toFixed(2)),
    peakMb,
    ok: batches.reduce((n, b) => n + b.ok, 0),
    tooLarge: batches.reduce((n, b) => n + b.tooLarge, 0),
  };
}

const without = summary(false);
const withHostile = summary(true);
const m = machine();
const report = [
  `\`npm run bench:hostile${quick ? " -- --quick" : ""}\` on ${new Date().toISOString().slice(0, 10)}: ${m.cpus} × ${m.cpuModel}, ` +
    `${m.memoryGb} GB, ${m.os}; Node ${process.versions.node}; PostgreSQL ${postgres}. ` +
    `${data.users.toLocaleString("en")} users × ${data.postsPerUser} posts, plus ${large.users} users × ${large.posts} posts of ` +
    `${large.characters.toLocaleString("en")} characters. GetUser BASIC at ${concurrency} in flight from a load-generator ` +
    `thread; ${rounds} interleaved round(s) of ${durationMs / 1000} s without and ${durationMs / 1000} s with hostile load; ` +
    `peak RSS is the service process's VmHWM over each window.`,
  "",
  "| GetUser BASIC | calls/s | p50 (ms) | p99 (ms) | p99 per round (ms) | service peak RSS (MB) |",
  "| --- | ---: | ---: | ---: | ---: | ---: |",
  `| without hostile load | ${Math.round(without.rate)} | ${without.p50.toFixed(2)} | ${without.p99.toFixed(2)} | ${without.p99s.join(", ")} | ${without.peakMb} |`,
  `| with ${hostileClients} stalled exports + ${hostileClients} BatchGetUsers FULL loops | ${Math.round(withHostile.rate)} | ${withHostile.p50.toFixed(2)} | ${withHostile.p99.toFixed(2)} | ${withHostile.p99s.join(", ")} | ${withHostile.peakMb} |`,
  `| with ÷ without | ${(withHostile.rate / without.rate).toFixed(2)} | ${(withHostile.p50 / without.p50).toFixed(2)} | **${(withHostile.p99 / without.p99).toFixed(2)}** | | ${(withHostile.peakMb / without.peakMb).toFixed(2)} |`,
  "",
  `Hostile load meanwhile: ${withHostile.ok} BatchGetUsers FULL answered OK (10 users, about 3 MB each), ` +
    `${withHostile.tooLarge} refused RESOURCE_EXHAUSTED REPLY_TOO_LARGE (16 users, about 4.9 MB), ` +
    `${problems.length === 0 ? "no other answer; every export stayed stalled (headers received, 0 message bytes) for its whole window" : `problems: ${problems.length}`}.`,
].join("\n");
console.log(`\n${report}`);
if (!quick) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(path.join(values.out, "hostile.md"), `${report}\n`);
  console.log(`bench: wrote ${path.join(values.out, "hostile.md")}`);
}
for (const problem of problems) console.error(`bench: ${problem}`);
process.exit(problems.length > 0 ? 1 : 0);
