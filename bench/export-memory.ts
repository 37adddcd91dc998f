import { writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { pino } from "pino";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createClient } from "../src/grpc/adapter.js";
import { PeakMemory } from "./servers/memory.js";
import { startServer } from "./servers/spawn.js";
import { provisionDatabase } from "./setup/database.js";
import { seed } from "./setup/seed.js";

// `npm run bench:export`: ExportPosts of 100,000 and 1,000,000 rows from the
// service as deployed, with the server's peak RSS for each (issue 3: bounded
// memory). The client reads as fast as it can, or with --slow, pauses after
// every message so the server has to hold back.

const { values } = parseArgs({
  options: {
    posts: { type: "string", default: "1000000" },
    slow: { type: "boolean", default: false },
    out: { type: "string", default: "bench/results" },
  },
});
const total = Number(values.posts);
const sizes = [Math.min(100_000, total), total].filter((n, i, all) => all.indexOf(n) === i);
const database = await provisionDatabase(process.env.DATABASE_URL);
const db = createDatabase({ url: database.url, log: pino({ level: "silent" }) });
const results: { rows: number; seconds: number; peakRssMb: number | undefined; idleRssMb: number | undefined }[] = [];
try {
  await migrateLatest(db);
  await seed(database.url, { users: Math.ceil(total / 100), postsPerUser: 100 });
  const server = await startServer("service", new URL("./servers/service.ts", import.meta.url), {
    env: { DATABASE_URL: database.url, LOG_LEVEL: "warn", METRICS_ADDRESS: "" },
    nodeArgs: [],
  });
  const posts = createClient(PostService, server.address, credentials.createInsecure());
  try {
    for (const rows of sizes) {
      const idle = new PeakMemory(server.pid).stop();
      const peak = new PeakMemory(server.pid);
      const started = process.hrtime.bigint();
      let seen = 0;
      for await (const message of posts.exportPosts({ filter: `id <= ${rows}` })) {
        seen += message.posts.length;
        if (values.slow) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (seen !== rows) throw new Error(`exported ${seen} rows, expected ${rows}`);
      const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : Math.round(bytes / 2 ** 20));
      results.push({ rows, seconds, peakRssMb: mb(peak.stop()), idleRssMb: mb(idle) });
      console.log(`ExportPosts ${rows} rows: ${seconds.toFixed(1)} s, server peak RSS ${mb(peak.stop())} MB`);
    }
  } finally {
    posts.close();
    await server.stop();
  }
} finally {
  await db.destroy();
  await database.close();
}
const table = [
  `| rows | seconds | rows/s | server RSS before (MB) | server peak RSS (MB) |`,
  `| ---: | ---: | ---: | ---: | ---: |`,
  ...results.map(
    (r) =>
      `| ${r.rows.toLocaleString("en")} | ${r.seconds.toFixed(1)} | ${Math.round(r.rows / r.seconds).toLocaleString("en")} | ${r.idleRssMb ?? "—"} | ${r.peakRssMb ?? "—"} |`,
  ),
].join("\n");
console.log(`\n${table}`);
await writeFile(path.join(values.out, `export${values.slow ? "-slow" : ""}.md`), `${table}\n`);
