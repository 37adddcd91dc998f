import pg from "pg";
import { scriptArgs } from "./args.js";
import { cleanupOnInterrupt } from "./cleanup.js";
import { LoadGenerator } from "./load/generator.js";
import { batchUsers, startHostile } from "./load/hostile.js";
import { finish, problemOf } from "./report/finish.js";
import { hostileTable } from "./report/hostile.js";
import type { Condition, Window } from "./report/hostile.js";
import { machine } from "./report/machine.js";
import { PeakMemory } from "./servers/memory.js";
import { startServer } from "./servers/spawn.js";
import { postgresVersion, provisionDatabase } from "./setup/database.js";
import { migrateAndSeed } from "./setup/seed.js";

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
// written to bench/results/tmp. --profile writes the service's V8 CPU profile
// to bench/results/tmp/profiles/hostile/. Ctrl-C stops the servers and drops
// the database.

const usage = `npm run bench:hostile -- [options]
  --quick               small data set, 2 s windows, one round (CI); results in bench/results/tmp
  --concurrency N       GetUser calls in flight (default 16)
  --duration S          seconds a window lasts (default 10; --quick 2)
  --rounds R            windows per condition, interleaved (default 3; --quick 1)
  --out DIR             where hostile.md goes (default bench/results; --quick bench/results/tmp)
  --profile             write the service's V8 CPU profile to bench/results/tmp/profiles/hostile/`;

const args = scriptArgs(usage, ["concurrency", "duration", "rounds"], ["profile"]);
const { quick, root, outDir } = args;
const concurrency = args.number("concurrency", 16);
const durationMs = args.number("duration", quick ? 2 : 10, false) * 1000;
const rounds = args.number("rounds", quick ? 1 : 3);
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

const conditions: Condition[] = [
  { title: "nothing (normal)", exports: 0, batches: 0 },
  { title: `${hostileClients} stalled exports`, exports: hostileClients, batches: 0 },
  { title: `${hostileClients} BatchGetUsers FULL loops`, exports: 0, batches: hostileClients },
  { title: `both (${hostileClients} + ${hostileClients} clients)`, exports: hostileClients, batches: hostileClients },
];

const { steps: cleanups, run: cleanup } = cleanupOnInterrupt();
const windows: Window[] = [];
let postgres = "";

async function main(): Promise<void> {
  const database = await provisionDatabase(process.env.DATABASE_URL);
  cleanups.push(() => database.close());
  await migrateAndSeed(database.url, data);
  const largeIds = await addLargeUsers(database.url);
  const firstLargePost = BigInt(data.users * data.postsPerUser + 1);
  postgres = await postgresVersion(database.url);
  const server = await startServer("service", new URL("./servers/service.ts", import.meta.url), {
    env: { DATABASE_URL: database.url, LOG_LEVEL: "info", METRICS_ADDRESS: "", MIGRATE_ON_START: "0", LOG_SQL: "0" },
    nodeArgs: args.flag("profile") ? ["--cpu-prof", "--cpu-prof-dir=bench/results/tmp/profiles/hostile"] : [],
  });
  cleanups.push(() => server.stop());
  const load = LoadGenerator.start(1, { data, databaseUrl: database.url, pool: 1 });
  cleanups.push(() => load.close());
  const target = { implementation: "service" as const, address: server.address };
  await load.run(target, "get-user-basic", { concurrency, durationMs: quick ? 1000 : 3000 }); // warm-up
  // The stall is real: once the exports have their headers, the service sends no SQL at all for a second.
  const stalled = await startHostile(server.address, { exports: hostileClients, batches: 0 }, largeIds, firstLargePost);
  const before = await server.statements();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const readAhead = (await server.statements()) - before;
  await stalled.stop();
  if (readAhead > 0) problems.push(`the stalled exports went on reading: ${readAhead} statements in a second`);
  for (let round = 1; round <= rounds; round++) {
    for (const condition of conditions) {
      const peak = new PeakMemory(server.pid);
      const hostile = await startHostile(server.address, condition, largeIds, firstLargePost);
      const result = await load.run(target, "get-user-basic", { concurrency, durationMs, record: true });
      const batches = await hostile.stop();
      const peakRss = peak.stop();
      const label = `round ${round}, beside ${condition.title}`;
      if (result.errors > 0)
        problems.push(`${label}: ${result.errors} GetUser calls failed, e.g. ${result.errorSample}`);
      for (const [i, e] of hostile.exports.entries()) {
        if (!e.headers || e.dataBytes > 0 || e.ended !== undefined) {
          problems.push(
            `${label}: export ${i} did not stay stalled (headers ${e.headers}, ${e.dataBytes} bytes, ended: ${e.ended})`,
          );
        }
      }
      for (const unexpected of new Set(batches.flatMap((b) => b.unexpected))) problems.push(`${label}: ${unexpected}`);
      const histogram = result.histogram!;
      const seconds = result.elapsedMs / 1000;
      windows.push({ condition, calls: result.calls, seconds, histogram, peakRss, batches });
      const ms = (p: number) => (histogram.getValueAtPercentile(p) / 1000).toFixed(1);
      console.log(
        `${label}: GetUser ${Math.round(result.calls / seconds)} calls/s, p50 ${ms(50)} ms, p99 ${ms(99)} ms, ` +
          `server peak RSS ${peakRss === undefined ? "?" : Math.round(peakRss / 2 ** 20)} MB`,
      );
    }
  }
}

await main().catch(problemOf(problems));
await cleanup();

/** megabytes is the size of the posts' texts of that many large users, the bulk of a FULL reply. */
const megabytes = (users: number) => ((users * large.posts * large.characters) / 1e6).toFixed(1);
const m = machine();
const report = [
  `\`npm run bench:hostile${quick ? " -- --quick" : ""}\` on ${new Date().toISOString().slice(0, 10)}: ${m.cpus} × ${m.cpuModel}, ` +
    `${m.memoryGb} GB, ${m.os}; Node ${process.versions.node}; PostgreSQL ${postgres}. ` +
    `${data.users.toLocaleString("en")} users × ${data.postsPerUser} posts, plus ${large.users} users × ${large.posts} posts of ` +
    `${large.characters.toLocaleString("en")} characters. GetUser BASIC at ${concurrency} in flight from a load-generator ` +
    `thread; ${rounds} round(s), each a window of ${durationMs / 1000} s per condition in turn; ` +
    `peak RSS is the service process's VmHWM over each window.`,
  "",
  hostileTable(conditions, windows),
  "",
  `Every stalled export got its headers and not one message byte for its whole window, and with ${hostileClients} ` +
    "of them open the service sent no SQL for a second (it waits on flow control, reading no chunk ahead); a fitting " +
    `BatchGetUsers asks for ${batchUsers.fitting} of the long writers (about ${megabytes(batchUsers.fitting)} MB), ` +
    `every fourth asks for ${batchUsers.oversized} (about ${megabytes(batchUsers.oversized)} MB, over the 4 MiB send ` +
    `limit). ${problems.length === 0 ? "No GetUser call failed and no other answer came." : `Problems: ${problems.length} (below).`}`,
].join("\n");
finish(windows.length > 0 ? report : "", problems, { root, outDir, file: "hostile.md" });
