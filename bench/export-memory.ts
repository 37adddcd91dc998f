import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { pino } from "pino";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createClient } from "../src/client/transport.js";
import type { HeapSample } from "./servers/heap-sampler.js";
import { PeakMemory } from "./servers/memory.js";
import { startServer } from "./servers/spawn.js";
import type { RunningServer } from "./servers/spawn.js";
import { provisionDatabase } from "./setup/database.js";
import { seed } from "./setup/seed.js";

// `npm run bench:export`: ExportPosts of 100,000 and 1,000,000 rows from the
// service as deployed, with the server's peak RSS for each (issue 6: the
// 1,000,000-row peak within 50 MB of the 100,000-row one). Both sizes run in
// one server process, one after the other, as a long-running server serves
// them; then each size runs again in a server process of its own (--runs,
// default 3, times), the fairer comparison. A sampler in each server process also
// records V8's heap: used, and the size of its old generation. The client
// reads as fast as it can, or with --slow, pauses after every message so the
// server has to hold back. --node-option passes a Node/V8 option to the
// server processes (repeatable); such runs are printed, not written to
// bench/results.

const { values } = parseArgs({
  options: {
    posts: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    slow: { type: "boolean", default: false },
    "node-option": { type: "string", multiple: true, default: [] },
    out: { type: "string", default: "bench/results" },
  },
});
const total = Number(values.posts);
const runs = Number(values.runs);
const nodeOptions = values["node-option"];
const sizes = [Math.min(100_000, total), total].filter((n, i, all) => all.indexOf(n) === i);
const sampler = fileURLToPath(new URL("./servers/heap-sampler.ts", import.meta.url));
const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : Math.round(bytes / 2 ** 20));

interface Result {
  process: string;
  rows: number;
  seconds: number;
  rssBeforeMb: number | undefined;
  peakRssMb: number | undefined;
  peakHeapUsedMb: number | undefined;
  peakOldSpaceMb: number | undefined;
}

async function readSamples(file: string, from: number, to: number): Promise<HeapSample[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as HeapSample)
    .filter((s) => s.t >= from && s.t <= to);
}

/** exportOnce runs one ExportPosts of `rows` rows and measures the server meanwhile. */
async function exportOnce(server: RunningServer, samples: string, label: string, rows: number): Promise<Result> {
  const posts = createClient(PostService, server.address, credentials.createInsecure());
  try {
    const rssBefore = new PeakMemory(server.pid).stop();
    const peak = new PeakMemory(server.pid);
    const from = Date.now();
    const started = process.hrtime.bigint();
    let seen = 0;
    for await (const message of posts.exportPosts({ filter: `id <= ${rows}` })) {
      seen += message.posts.length;
      if (values.slow) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peakRss = peak.stop();
    if (seen !== rows) throw new Error(`exported ${seen} rows, expected ${rows}`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the sampler's last line
    const heap = await readSamples(samples, from, Date.now());
    const max = (key: keyof HeapSample) => (heap.length === 0 ? undefined : mb(Math.max(...heap.map((s) => s[key]))));
    const result: Result = {
      process: label,
      rows,
      seconds,
      rssBeforeMb: mb(rssBefore),
      peakRssMb: mb(peakRss),
      peakHeapUsedMb: max("heapUsed"),
      peakOldSpaceMb: max("oldSpace"),
    };
    console.log(
      `${label}: ExportPosts ${rows} rows in ${seconds.toFixed(1)} s, server peak RSS ${result.peakRssMb} MB ` +
        `(V8 heap used ≤ ${result.peakHeapUsedMb} MB, old space ≤ ${result.peakOldSpaceMb} MB)`,
    );
    return result;
  } finally {
    posts.close();
  }
}

/** inServer starts the service as deployed, with the heap sampler, runs work against it and stops it. */
async function inServer<T>(url: string, work: (server: RunningServer, samples: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "blog-export-heap-"));
  const samples = path.join(dir, "samples.jsonl");
  const server = await startServer("service", new URL("./servers/service.ts", import.meta.url), {
    env: { DATABASE_URL: url, LOG_LEVEL: "warn", METRICS_ADDRESS: "", BENCH_HEAP_SAMPLES: samples },
    nodeArgs: ["--import", sampler, ...nodeOptions],
  });
  try {
    return await work(server, samples);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const database = await provisionDatabase(process.env.DATABASE_URL);
const db = createDatabase({ url: database.url, log: pino({ level: "silent" }) });
const results: Result[] = [];
try {
  await migrateLatest(db);
  await seed(database.url, { users: Math.ceil(total / 100), postsPerUser: 100 });
  await inServer(database.url, async (server, samples) => {
    for (const rows of sizes) results.push(await exportOnce(server, samples, "one process", rows));
  });
  for (let run = 1; run <= runs; run++) {
    for (const rows of sizes) {
      const label = runs === 1 ? "fresh process" : `fresh process ${run}`;
      results.push(await inServer(database.url, (server, samples) => exportOnce(server, samples, label, rows)));
    }
  }
} finally {
  await db.destroy();
  await database.close();
}

const cell = (n: number | undefined) => (n === undefined ? "—" : String(n));
const table = [
  `| server | rows | seconds | rows/s | RSS before (MB) | peak RSS (MB) | peak V8 heap used (MB) | peak old space (MB) |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...results.map(
    (r) =>
      `| ${r.process} | ${r.rows.toLocaleString("en")} | ${r.seconds.toFixed(1)} | ${Math.round(r.rows / r.seconds).toLocaleString("en")} | ${cell(r.rssBeforeMb)} | ${cell(r.peakRssMb)} | ${cell(r.peakHeapUsedMb)} | ${cell(r.peakOldSpaceMb)} |`,
  ),
].join("\n");
// Issue 6's target, per server process: the larger export's peak RSS over the smaller one's.
const growth = [...new Set(results.map((r) => r.process))].flatMap((label) => {
  const [small, large] = [sizes[0], sizes.at(-1)].map((rows) =>
    results.find((r) => r.process === label && r.rows === rows),
  );
  if (sizes.length < 2 || small?.peakRssMb === undefined || large?.peakRssMb === undefined) return [];
  const delta = large.peakRssMb - small.peakRssMb;
  const verdict = delta <= 50 ? "met" : "missed";
  return [
    `- ${label}: peak RSS ${large.peakRssMb} MB at ${large.rows.toLocaleString("en")} rows, ${delta >= 0 ? "+" : ""}${delta} MB against ${small.peakRssMb} MB at ${small.rows.toLocaleString("en")} rows (target at most +50 MB: ${verdict}).`,
  ];
});
const report = [table, "", ...growth].join("\n");
console.log(`\n${report}`);
if (nodeOptions.length === 0) {
  await writeFile(path.join(values.out, `export${values.slow ? "-slow" : ""}.md`), `${report}\n`);
} else {
  console.log(`\n(not written to ${values.out}: the server ran with ${nodeOptions.join(" ")})`);
}
