// npm run bench:watch: what the change feed costs and how fast it delivers.
//
// 1. The outbox's cost to writers: CreatePost and UpdateUser throughput with
//    the feed's triggers on and off (ALTER TABLE ... DISABLE TRIGGER), in
//    alternating slices of the same run against the same database.
// 2. Commit-to-delivery latency: at a steady CreatePost rate, the time from a
//    change's commit_time (PostgreSQL's clock at commit) to its arrival at each
//    of 1, then 100, WatchPosts watchers (the same machine's clock).
//
// The service runs in this process, on the same cores as the load: the
// figures compare on with off, and are not absolute capacity.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { pino } from "pino";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { createClient } from "../src/client/transport.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createServer } from "../src/server.js";
import { provisionDatabase } from "./setup/database.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    out: { type: "string", default: "bench/results" },
  },
});
const sliceMs = values.quick ? 500 : 3_000;
const slices = values.quick ? 2 : 4;
const latencyMs = values.quick ? 1_000 : 10_000;
const concurrency = 16;
const ratePerSecond = 50;

const database = await provisionDatabase(process.env.DATABASE_URL);
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? "silent" });
const db = createDatabase({ url: database.url, poolMax: 10, log });
await migrateLatest(db);
const server = createServer({ db, log });
const address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
const users = createClient(UserService, address, credentials.createInsecure());
const posts = createClient(PostService, address, credentials.createInsecure());
// Watchers on connections of their own, 13 per connection: a connection may have at most 16 streams
// open (STREAM_MAX_PER_CONNECTION) and run 100 calls at once (GRPC_MAX_CONCURRENT_STREAMS), so 100
// watches on the writers' connection would be refused, and would leave no room for writes anyway.
const watchClients = Array.from({ length: 8 }, () =>
  createClient(PostService, address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
);
const userIds: bigint[] = [];
for (let i = 0; i < 100; i++) userIds.push((await users.createUser({ user: { name: `u${i}`, age: 30 } })).user!.id);

const progress = (what: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${what}\n`);
const feed = async (on: boolean) => {
  progress(`feed ${on ? "on" : "off"}`);
  for (const table of ["users", "posts"])
    // USER: the change feed's triggers are the only ones of users and posts that are not a foreign key's.
    await db.raw(`ALTER TABLE ?? ${on ? "ENABLE" : "DISABLE"} TRIGGER USER`, [table]);
};

/** throughput runs `call` with `concurrency` callers for ms and returns calls per second. */
async function throughput(call: (n: number) => Promise<unknown>, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let n = w; Date.now() < end; n += concurrency) {
        await call(n);
        calls++;
      }
    }),
  );
  return calls / (ms / 1000);
}

const writes = {
  CreatePost: (n: number) => posts.createPost({ post: { userId: userIds[n % 100]!, title: `t${n}` } }),
  UpdateUser: (n: number) =>
    users.updateUser({ user: { id: userIds[n % 100]!, age: n % 150 }, updateMask: { paths: ["age"] } }),
};
const cost: string[] = [];
for (const [name, call] of Object.entries(writes)) {
  const totals = { on: 0, off: 0 };
  for (let slice = 0; slice < slices; slice++) {
    for (const mode of slice % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
      await feed(mode === "on");
      totals[mode] += await throughput(call, sliceMs);
    }
  }
  const on = totals.on / slices;
  const off = totals.off / slices;
  cost.push(`| ${name} | ${off.toFixed(0)} | ${on.toFixed(0)} | ${((1 - on / off) * 100).toFixed(1)} % |`);
}
await feed(true);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const latency: string[] = [];
for (const watchers of [1, 100]) {
  progress(`${watchers} watchers`);
  const stop = new AbortController();
  const delays: number[] = [];
  const started = await Promise.all(
    Array.from({ length: watchers }, async (_, w) => {
      const stream = watchClients[w % watchClients.length]!.watchPosts({}, { signal: stop.signal });
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next(); // the first heartbeat: the watch is reading
      // Wrapped: an async function returning a promise would wait for it.
      return {
        consumed: (async () => {
          try {
            for (;;) {
              const { value, done } = await iterator.next();
              if (done) return;
              const now = Date.now();
              for (const change of value.changes) {
                const t = change.commitTime!;
                delays.push(now - (Number(t.seconds) * 1000 + t.nanos / 1e6));
              }
            }
          } catch {
            // cancelled at the end
          }
        })(),
      };
    }),
  );
  const end = Date.now() + latencyMs;
  let sent = 0;
  while (Date.now() < end) {
    const n = sent++;
    void writes.CreatePost(n);
    await new Promise((resolve) => setTimeout(resolve, 1000 / ratePerSecond));
  }
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  stop.abort();
  await Promise.all(started.map((s) => s.consumed));
  if (delays.length === 0) throw new Error(`${watchers} watchers received no change`);
  delays.sort((a, b) => a - b);
  latency.push(
    `| ${watchers} | ${ratePerSecond} | ${delays.length} | ${percentile(delays, 0.5).toFixed(0)} | ${percentile(delays, 0.99).toFixed(0)} | ${delays.at(-1)!.toFixed(0)} |`,
  );
}

const report = `# Change feed figures

${new Date().toISOString().slice(0, 16)}Z, ${database.where}; service and load in one process.

## The outbox's cost to writers (${concurrency} concurrent callers, ${slices} alternating slices of ${sliceMs / 1000} s each)

| call | calls/s, feed off | calls/s, feed on | cost |
| ---- | ----------------: | ---------------: | ---: |
${cost.join("\n")}

## Commit to delivery (WatchPosts, ms; commit_time is PostgreSQL's clock at commit)

| watchers | CreatePost/s | deliveries | p50 | p99 | max |
| -------: | -----------: | ---------: | --: | --: | --: |
${latency.join("\n")}
`;
console.log(report);
if (!values.quick) await writeFile(path.join(values.out, "watch.md"), report);
users.close();
posts.close();
for (const client of watchClients) client.close();
await server.shutdown(1000);
await db.destroy();
await database.close();
