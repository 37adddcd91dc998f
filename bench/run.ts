import path from "node:path";
import { parseBenchArgs } from "./args.js";
import type { Implementation } from "./args.js";
import { cleanupOnInterrupt } from "./cleanup.js";
import { LoadGenerator } from "./load/generator.js";
import type { TargetRef } from "./load/protocol.js";
import { measureScenario } from "./measure.js";
import type { Bench } from "./measure.js";
import { machine } from "./report/machine.js";
import { copyNote } from "./report/markdown.js";
import { addRatios } from "./report/results.js";
import type { BenchResults, ScenarioResult } from "./report/results.js";
import { problems, writeResults } from "./report/write.js";
import { scenarios } from "./scenarios/index.js";
import { postgresVersion, provisionDatabase } from "./setup/database.js";
import { migrateAndSeed } from "./setup/seed.js";
import { startAll } from "./servers/start-all.js";
import { sameRowCount, verifyScenario } from "./verify.js";

// `npm run bench`: provision a database, seed it, start every implementation
// in its own process, verify their answers agree, measure each scenario
// interleaved, and write bench/results/latest.{md,json,svg}. Exits non-zero
// when any call failed or any answer differed. `--help` lists the options.

const root = path.resolve(import.meta.dirname, "..");
const options = parseBenchArgs(process.argv.slice(2), root);
const unknown = (options.scenarios ?? []).filter((id) => !scenarios.some((s) => s.id === id));
if (unknown.length > 0) {
  throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${scenarios.map((s) => s.id).join(", ")}`);
}
const chosen = scenarios.filter((s) => options.scenarios?.includes(s.id) ?? true);
const data = { users: options.users, postsPerUser: options.postsPerUser };

const { steps: cleanups, run: cleanup } = cleanupOnInterrupt();

async function main(): Promise<number> {
  console.log(
    `bench: ${data.users} users x ${data.postsPerUser} posts, scenarios ${chosen.map((s) => s.id).join(", ")}`,
  );
  const database = await provisionDatabase(process.env.DATABASE_URL);
  cleanups.push(() => database.close());
  console.log(`bench: using ${database.where}`);
  const seedStarted = performance.now();
  await migrateAndSeed(database.url, data);
  console.log(`bench: migrated and seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);

  const servers = await startAll(options, database.url, path.join(root, "bench/results/tmp"), cleanups);
  const load = LoadGenerator.start(options.workers, { data, databaseUrl: database.url, pool: options.pool });
  cleanups.push(() => load.close());
  const targets = new Map<Implementation, TargetRef>(
    options.implementations.map((impl) => [impl, { implementation: impl, address: servers.get(impl)?.address }]),
  );
  const bench: Bench = { options, load, targets, servers };

  const results: ScenarioResult[] = [];
  for (const scenario of chosen) {
    console.log(`${scenario.title}:`);
    const echo = servers.get("echo");
    const verification = await verifyScenario(
      scenario,
      targets,
      load,
      (p, r, repeat) => echo?.setCanned(p, r, repeat) ?? Promise.resolve(),
      scenario.echoRepeat?.(data) ?? 1,
    );
    for (const [impl, verdict] of Object.entries(verification)) {
      if (verdict === sameRowCount) console.log(`  ${impl}: ${copyNote}`);
      else if (verdict !== "ok") console.log(`  ${impl}: answer differs from the service's: ${verdict}`);
    }
    const result: ScenarioResult = {
      id: scenario.id,
      title: scenario.title,
      method: `/${scenario.method.parent.typeName}/${scenario.method.name}`,
      limit: scenario.limit,
      verification,
      measurements: await measureScenario(bench, scenario),
    };
    addRatios(result);
    results.push(result);
  }

  const report: BenchResults = {
    generatedAt: new Date().toISOString(),
    command: ["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "),
    quick: options.quick,
    machine: machine(),
    node: process.versions.node,
    postgres: await postgresVersion(database.url),
    database: database.where,
    dataSet: { ...data, posts: data.users * data.postsPerUser },
    settings: {
      concurrency: options.concurrency,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      rounds: options.rounds,
      pool: options.pool,
      workers: options.workers,
      fixedRequest: options.fixedRequest,
    },
    scenarios: results,
  };
  writeResults(options.outDir, report);
  console.log(`bench: wrote ${path.relative(root, options.outDir)}/latest.{md,json,svg}`);
  const found = problems(report);
  for (const problem of found) console.error(`bench: ${problem}`);
  return found.length > 0 ? 1 : 0;
}

const code = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
await cleanup();
process.exit(code);
