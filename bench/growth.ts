import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { parseBenchArgs } from "./args.js";
import { compareSizes, growthTarget, writeGrowth } from "./report/growth.js";
import type { BenchResults } from "./report/results.js";

// `npm run bench:growth`: the read scenarios at each data-set size (issue 6:
// the same figures at 10,000 and 1,000,000 users, no worse than 1.5×). Each
// size is one `npm run bench -- --users N` of its own, run one after another:
// it seeds a fresh database, measures, and drops the database (or stops the
// embedded PostgreSQL) before the next size starts, so no size inherits
// another's tables or caches. Their results are lined up in
// bench/results/growth.{md,json}.

const root = path.resolve(import.meta.dirname, "..");
const usage = `npm run bench:growth -- [--sizes 10000,1000000] [npm run bench options except --users]
  --sizes A,B,...         users seeded for each run, smallest first (default 10000,1000000)
  Defaults that differ from npm run bench: --scenario get-user-basic --scenario get-user-full
  --scenario list-users-full --impl peer (pass --scenario or --impl to choose others).
  --out DIR is where growth.{md,json} go; each size's own results go to bench/results/tmp/growth-N/.`;

/** splitSizes takes --sizes out of argv (the rest goes to the harness) and checks both. */
function splitSizes(argv: string[]): { users: number[]; rest: string[] } {
  const rest: string[] = [];
  let sizes = "10000,1000000";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--sizes") sizes = argv[++i] ?? "";
    else if (arg.startsWith("--sizes=")) sizes = arg.slice("--sizes=".length);
    else if (arg === "--users" || arg.startsWith("--users=")) throw new Error(`--users is set by --sizes\n\n${usage}`);
    else rest.push(arg);
  }
  const users = sizes.split(",").map((s) => Number(s.trim()));
  if (users.length < 2 || users.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
    throw new Error(`--sizes must be two or more positive integers, got "${sizes}"\n\n${usage}`);
  }
  return { users: [...new Set(users)].sort((a, b) => a - b), rest };
}

const argv = process.argv.slice(2);
if (argv.includes("--help")) {
  console.log(`${usage}\n\nnpm run bench options:`);
  parseBenchArgs(["--help"], root);
}
const { users, rest } = splitSizes(argv);
const given = (name: string) => rest.some((a) => a === name || a.startsWith(`${name}=`));
const harnessArgs = [
  ...rest,
  ...(given("--scenario")
    ? []
    : ["get-user-basic", "get-user-full", "list-users-full"].flatMap((id) => ["--scenario", id])),
  ...(given("--impl") ? [] : ["--impl", "peer"]),
];
// Checks every option before the first, long, seeding; --out is growth's own.
const options = parseBenchArgs(harnessArgs, root);
const forwarded = harnessArgs.filter(
  (a, i) => !(a === "--out" || a.startsWith("--out=") || harnessArgs[i - 1] === "--out"),
);

// Ctrl-C reaches the harness too: it stops its servers and drops its database; wait for it, then stop.
let interrupted = false;
process.on("SIGINT", () => {
  interrupted = true;
});

/** runAt runs the harness on `n` users and returns its results (also when it exits 1 on errors). */
async function runAt(n: number): Promise<{ results: BenchResults; code: number }> {
  const outDir = path.join(root, "bench/results/tmp", `growth-${n}`);
  rmSync(outDir, { recursive: true, force: true });
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(root, "bench/run.ts"), ...forwarded, "--users", String(n), "--out", outDir],
    { stdio: "inherit" },
  );
  const code = await new Promise<number>((resolve) => child.once("exit", (c) => resolve(c ?? 1)));
  if (interrupted) process.exit(130);
  const file = path.join(outDir, "latest.json");
  try {
    return { results: JSON.parse(readFileSync(file, "utf8")) as BenchResults, code };
  } catch {
    throw new Error(`npm run bench on ${n} users exited with ${code} and wrote no ${path.relative(root, file)}`);
  }
}

const runs: BenchResults[] = [];
let failed = false;
try {
  for (const [i, n] of users.entries()) {
    console.log(`growth: ${n.toLocaleString("en-US")} users (${i + 1} of ${users.length})`);
    const { results, code } = await runAt(n);
    runs.push(results);
    failed ||= code !== 0;
  }
} catch (error) {
  console.error(`growth: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
writeGrowth(options.outDir, {
  generatedAt: new Date().toISOString(),
  command: ["npm run bench:growth", ...(argv.length > 0 ? ["--", ...argv] : [])].join(" "),
  target: growthTarget,
  users,
  scenarios: compareSizes(runs),
  runs,
});
console.log(`growth: wrote ${path.relative(root, options.outDir)}/growth.{md,json}`);
if (failed) console.error("growth: a run had failed calls or differing answers (above); its figures are still written");
process.exit(failed ? 1 : 0);
