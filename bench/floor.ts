import { closeSync, openSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { scriptArgs } from "./args.js";
import { cleanupOnInterrupt } from "./cleanup.js";
import { floorFeatures } from "./floor/features.js";
import { encodeRequest } from "./load/drive.js";
import { grpcFrame } from "./load/grpc-frame.js";
import { grpcAnswer, grpcBody, h2load } from "./load/h2load.js";
import { rotate } from "./measure.js";
import { finish, problemOf } from "./report/finish.js";
import { machine } from "./report/machine.js";
import { median } from "./report/results.js";
import { getUserBasic } from "./scenarios/get-user-basic.js";
import { CpuTime } from "./servers/cpu.js";
import { startServer } from "./servers/spawn.js";
import type { RunningServer } from "./servers/spawn.js";
import { startAll } from "./servers/start-all.js";
import { postgresVersion, provisionDatabase } from "./setup/database.js";
import { migrateAndSeed } from "./setup/seed.js";

// `npm run bench:floor` (issue 13): what one GetUser BASIC at a time costs on
// the stack the design fixes, and what each required feature adds to it, next
// to the peer and the service. h2load sends one call at a time over one
// connection to each implementation in turn (the order rotating each round);
// each window reports calls/s, p50 and the server's CPU µs per call. The
// floors (bench/floor/server.ts) are not the service: they say how close to
// the peer any service on this stack, with these features, can come. Exits 1
// on any failed call or unexpected answer; never on timings.

const usage = `npm run bench:floor -- [options]
  --quick               tiny data set, a few calls, one round (CI); results in bench/results/tmp
  --users N             seeded users (default 100000; --quick 200)
  --requests N          calls per window (default 4000; --quick 200)
  --warmup N            calls per implementation before the rounds (default 20000; --quick 200)
  --rounds R            windows per implementation, interleaved (default 15; --quick 1)
  --pool N              PostgreSQL pool size of every implementation (default 10)
  --out DIR             where floor.md goes (default bench/results; --quick bench/results/tmp)`;

const args = scriptArgs(usage, ["users", "requests", "warmup", "rounds", "pool"]);
const { quick, root, outDir } = args;
const data = { users: args.number("users", quick ? 200 : 100_000), postsPerUser: 10 };
const requests = args.number("requests", quick ? 200 : 4000);
const warmup = args.number("warmup", quick ? 200 : 20_000);
const rounds = args.number("rounds", quick ? 1 : 15);
const pool = args.number("pool", 10);
const tmpDir = path.join(root, "bench/results/tmp");
const scenario = getUserBasic;
const method = `/${scenario.method.parent.typeName}/${scenario.method.name}`;

/** What each feature is in its cheapest form, as bench/floor/server.ts builds it. */
const featureText: Record<(typeof floorFeatures)[number], string> = {
  validate: "the floor + one protovalidate check of the request",
  signal: "the floor + an AbortController per call, listened to while the statement runs",
  metrics: "the floor + a histogram observation and a counter increment, three labels",
  log: "the floor + one JSON line per call through the service's buffered logger",
  scope: "the floor + the call run inside one AsyncLocalStorage.run",
};

/** Target is one implementation measured: the peer, a floor with some features, or the service. */
interface Target {
  name: string;
  adds: string;
  server: RunningServer;
}

interface Window {
  callsPerSecond: number;
  p50Us: number;
  cpuUsPerCall: number | undefined;
}

const floors: { name: string; features: string[]; query: "knex" | "pg"; adds: string }[] = [
  {
    name: "floor on pg.Pool",
    features: [],
    query: "pg",
    adds: "grpc-js, protobuf-es and the row mapper on a pg.Pool, no Knex (the design does not allow it; for attribution)",
  },
  {
    name: "floor",
    features: [],
    query: "knex",
    adds: "the fixed stack alone: grpc-js, protobuf-es, knex.raw on pg, the service's row mapper",
  },
  ...floorFeatures.map((feature) => ({
    name: `floor + ${feature}`,
    features: [feature],
    query: "knex" as const,
    adds: featureText[feature],
  })),
  { name: "floor + all", features: [...floorFeatures], query: "knex", adds: "the floor + every feature above" },
];

const problems: string[] = [];
const { steps: cleanups, run: cleanup } = cleanupOnInterrupt();

async function main(): Promise<string> {
  const loadBefore = os.loadavg();
  const database = await provisionDatabase(process.env.DATABASE_URL);
  cleanups.push(() => database.close());
  await migrateAndSeed(database.url, data);
  const started = await startAll(
    { implementations: ["service", "peer"], pool, profile: false },
    database.url,
    tmpDir,
    cleanups,
  );
  const logFd = openSync(path.join(tmpDir, "floor.log"), "w");
  cleanups.push(async () => closeSync(logFd));
  const env = { DATABASE_URL: database.url, DATABASE_POOL_MAX: String(pool) };
  const floorServers = await Promise.all(
    floors.map(async ({ features, query }) => {
      const server = await startServer("floor", new URL("./floor/server.ts", import.meta.url), {
        env: { ...env, FLOOR_FEATURES: features.join(","), FLOOR_QUERY: query },
        nodeArgs: [],
        stdoutFd: logFd,
      });
      cleanups.push(() => server.stop());
      return server;
    }),
  );
  const bodyFile = path.join(tmpDir, "floor-request.bin");
  writeFileSync(bodyFile, grpcFrame(encodeRequest(scenario, data, true)));
  const url = (server: RunningServer) => `http://${server.address}${method}`;
  const targets: Target[] = [
    { name: "peer", adds: "bench/peer: proto-loader, pg.Pool, hand-written SQL", server: started.get("peer")! },
    ...floors.map(({ name, adds }, i) => ({ name, adds, server: floorServers[i]! })),
    { name: "service", adds: "the service as deployed (bench/servers/service.ts)", server: started.get("service")! },
  ];
  const answers = new Map<Target, Buffer>();
  for (const target of targets) {
    const got = await grpcAnswer(url(target.server), bodyFile);
    if (got.status !== "0" || got.dataBytes === 0) {
      problems.push(`${target.name} answered grpc-status ${got.status} (${got.message}) with ${got.dataBytes} bytes`);
    }
    answers.set(target, await grpcBody(url(target.server), bodyFile));
  }
  // The floors encode the service's message with the same protobuf-es from the same row: the same bytes.
  const serviceAnswer = answers.get(targets.at(-1)!)!;
  for (const target of targets.filter((t) => t.name.startsWith("floor"))) {
    if (!answers.get(target)!.equals(serviceAnswer))
      problems.push(`${target.name} answered other bytes than the service`);
  }
  if (problems.length > 0) return "";

  const logFile = path.join(tmpDir, "floor-h2load.log");
  const window = async (target: Target, calls: number): Promise<Window> => {
    const cpu = new CpuTime(target.server.pid);
    const run = await h2load(url(target.server), bodyFile, {
      requests: calls,
      inFlight: 1,
      logFile,
      answerBytes: answers.get(target)!.length,
    });
    const cpuUs = cpu.stop();
    problems.push(...run.problems.map((p) => `${target.name}: ${p}`));
    const result = {
      callsPerSecond: (run.calls * 1000) / run.elapsedMs,
      p50Us: run.histogram.getValueAtPercentile(50),
      cpuUsPerCall: cpuUs === undefined ? undefined : cpuUs / run.calls,
    };
    run.histogram.destroy();
    return result;
  };
  for (const target of targets) await window(target, warmup);
  const windows = new Map<string, Window[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const target of rotate(targets, round)) {
      const w = await window(target, requests);
      windows.get(target.name)!.push(w);
      console.log(
        `  round ${round + 1}, ${target.name}: ${Math.round(w.callsPerSecond)} calls/s, p50 ${(w.p50Us / 1000).toFixed(3)} ms, ` +
          `CPU ${w.cpuUsPerCall === undefined ? "?" : Math.round(w.cpuUsPerCall)} µs/call`,
      );
    }
  }

  // The report says every answer was right: none of it is written after a failed call.
  if (problems.length > 0) return "";
  const figures = (name: string) => {
    const ws = windows.get(name)!;
    const cpu = ws.map((w) => w.cpuUsPerCall).filter((c): c is number => c !== undefined);
    return {
      rate: median(ws.map((w) => w.callsPerSecond)),
      p50: median(ws.map((w) => w.p50Us)),
      cpu: cpu.length === ws.length ? median(cpu) : undefined,
    };
  };
  const peer = figures("peer");
  const rows = targets.map((t) => {
    const f = figures(t.name);
    const perRound = windows.get(t.name)!.map((w) => w.callsPerSecond / peer.rate);
    const spread = `${Math.min(...perRound).toFixed(2)}-${Math.max(...perRound).toFixed(2)}`;
    return (
      `| ${t.name} | ${t.adds} | ${Math.round(f.rate)} | ${(f.rate / peer.rate).toFixed(2)} (${spread}) | ` +
      `${(f.p50 / 1000).toFixed(3)} | ${(f.p50 / peer.p50).toFixed(2)} | ${f.cpu === undefined ? "?" : Math.round(f.cpu)} |`
    );
  });
  const m = machine();
  const loadAfter = os.loadavg();
  return [
    `\`npm run bench:floor${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}\` on ` +
      `${new Date().toISOString().slice(0, 10)}: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.os}; Node ` +
      `${process.versions.node}; PostgreSQL ${await postgresVersion(database.url)}; h2load from nghttp2-client. ` +
      `${data.users.toLocaleString("en-US")} users. GetUser BASIC (\`${method}\`, the scenario's sample id), one call ` +
      `at a time on one HTTP/2 connection (\`h2load -c 1 -m 1\`), pool ${pool}. ${warmup} calls of warm-up per ` +
      `implementation, then ${rounds} round(s) of ${requests} calls per implementation, the order rotating each ` +
      `round; figures are medians over the rounds (in brackets the lowest and highest of a window's calls/s ÷ the peer's median). CPU is the server ` +
      `process's own (user + system, /proc/<pid>/stat) over the window, per call. Load average ` +
      `${loadBefore.map((l) => l.toFixed(1)).join(", ")} before, ${loadAfter.map((l) => l.toFixed(1)).join(", ")} after.`,
    "",
    "| implementation | what it is | calls/s | ÷ peer | p50 ms | ÷ peer | CPU µs/call |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Every call of every window carried exactly the bytes of its implementation's expected answer; the floors' " +
      "answers are the service's bytes.",
  ].join("\n");
}

const report = await main().catch(problemOf(problems));
await cleanup();
finish(report, problems, { root, outDir, file: "floor.md" });
