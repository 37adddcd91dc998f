// npm run bench:prepared: what DATABASE_PREPARED_STATEMENTS buys, off against
// auto (prepared, on a direct connection).
//
// The statements of GetUser BASIC (UserRepository.getMany of one id) and
// CreatePost (PostRepository.add: the INSERT ... FROM unnest), one at a time
// through the service's repositories on a pool of one connection, in rounds
// that alternate the two settings. Per call: calls/s, this process's CPU, and
// the CPU of the PostgreSQL backend serving the connection (from /proc, when
// the server runs on this machine). No gRPC: the service's per-call work is
// the same either way, and hides the difference on a busy machine. The report
// goes to bench/results/prepared.md; with --quick (a few calls, one round) to
// bench/results/tmp, so a CI run leaves the committed one alone.
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Knex } from "knex";
import { pino } from "pino";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { PostRepository } from "../src/posts/repository.js";
import { UserRepository } from "../src/users/repository.js";
import { scriptArgs } from "./args.js";
import { median } from "./report/results.js";
import { CpuTime } from "./servers/cpu.js";
import { provisionDatabase } from "./setup/database.js";

const usage = `npm run bench:prepared -- [options]
  --quick      200 and 100 calls a round, one round (CI); the report in bench/results/tmp
  --rounds R   rounds, each measuring both settings in turn (default 8; --quick 1)
  --out DIR    where prepared.md goes (default bench/results; --quick bench/results/tmp)`;

const args = scriptArgs(usage, ["rounds"]);
const rounds = args.number("rounds", args.quick ? 1 : 8);
const calls = { get: args.quick ? 200 : 5_000, create: args.quick ? 100 : 2_000 };
const modes = ["off", "auto"] as const;
const { outDir } = args;

const database = await provisionDatabase(process.env.DATABASE_URL);
const log = pino({ level: "silent" });
const setup = createDatabase({ url: database.url, log });
await migrateLatest(setup);
const userId = (await new UserRepository(setup).create({ name: "Bench", age: 30 })).id;
await setup.destroy();

/**
 * backendCpu follows the CPU time of the PostgreSQL backend with this pid,
 * or is undefined when no local postgres process has it (the server runs
 * elsewhere, and the pid here may be anything else).
 */
function backendCpu(pid: number): CpuTime | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "postgres" ? new CpuTime(pid) : undefined;
  } catch {
    return undefined;
  }
}

interface Sample {
  rate: number;
  clientUs: number;
  postgresUs: number | undefined;
}

async function measure(mode: (typeof modes)[number], scenario: keyof typeof calls): Promise<Sample> {
  const db: Knex = createDatabase({ url: database.url, poolMax: 1, preparedStatements: mode, log });
  try {
    const users = new UserRepository(db);
    const posts = new PostRepository(db);
    const run =
      scenario === "get"
        ? () => users.getMany([userId], { withPosts: false })
        : () => posts.add(userId, { title: "bench", content: "prepared statements" });
    const pid = (await db.raw<{ rows: { pid: number }[] }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    for (let i = 0; i < 200; i++) await run();
    const backend = backendCpu(pid);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls[scenario]; i++) await run();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const backendUs = backend?.stop();
    const n = calls[scenario];
    return {
      rate: n / seconds,
      clientUs: (cpu.user + cpu.system) / n,
      postgresUs: backendUs === undefined ? undefined : backendUs / n,
    };
  } finally {
    await db.destroy();
  }
}

const names = { get: "GetUser BASIC (`getMany`, one id)", create: "CreatePost (`add`, INSERT ... FROM unnest)" };
const spread = (xs: (number | undefined)[]) => {
  if (xs.some((x) => x === undefined)) return "—";
  const known = xs as number[];
  return `${median(known).toFixed(0)} (${Math.min(...known).toFixed(0)}–${Math.max(...known).toFixed(0)})`;
};
const lines = [
  "| statement | DATABASE_PREPARED_STATEMENTS | calls/s | client CPU µs/call | PostgreSQL CPU µs/call |",
  "| --- | --- | ---: | ---: | ---: |",
];
try {
  for (const scenario of ["get", "create"] as const) {
    const samples: Record<string, Sample[]> = { off: [], auto: [] };
    for (let round = 0; round < rounds; round++) {
      for (const mode of modes) samples[mode]!.push(await measure(mode, scenario));
      process.stderr.write(`${scenario}: round ${round + 1}/${rounds}\n`);
    }
    for (const mode of modes) {
      const s = samples[mode]!;
      lines.push(
        `| ${names[scenario]} | ${mode} | ${spread(s.map((x) => x.rate))} | ${spread(s.map((x) => x.clientUs))} | ${spread(s.map((x) => x.postgresUs))} |`,
      );
    }
  }
} finally {
  await database.close();
}
const report = [
  "### Prepared statements figures",
  "",
  `\`npm run bench:prepared\` on ${new Date().toISOString().slice(0, 10)}: ${database.where}; ${rounds} rounds alternating the settings,` +
    ` ${calls.get} and ${calls.create} calls a round, one at a time on a pool of one; median (range over rounds).`,
  "",
  ...lines,
  "",
].join("\n");
await mkdir(outDir, { recursive: true });
await writeFile(path.join(outDir, "prepared.md"), report);
console.log(report);
console.log(`bench: wrote ${path.relative(process.cwd(), path.join(outDir, "prepared.md"))}`);
