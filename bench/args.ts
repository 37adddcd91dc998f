import path from "node:path";
import { parseArgs } from "node:util";

/** Implementation names every scenario runs against, in report order. */
export const implementations = ["service", "peer", "pg", "echo"] as const;

/** Implementation is one of the things a scenario is measured on. */
export type Implementation = (typeof implementations)[number];

/** BenchOptions is the command line of `npm run bench`, parsed and defaulted once. */
export interface BenchOptions {
  quick: boolean;
  users: number;
  postsPerUser: number;
  concurrency: number[];
  /** concurrencyGiven is true when --concurrency was passed: it then also replaces scenarios' own sweeps. */
  concurrencyGiven: boolean;
  warmupMs: number;
  durationMs: number;
  /** rounds splits each timed phase into slices taken in turn by every implementation. */
  rounds: number;
  pool: number;
  workers: number;
  scenarios: string[] | undefined;
  implementations: Implementation[];
  outDir: string;
  /** profile runs every server process with --cpu-prof, profiles in bench/results/tmp/profiles/<impl>/. */
  profile: boolean;
  /** fixedRequest sends the scenario's sample request on every call instead of a random one. */
  fixedRequest: boolean;
}

const usage = `npm run bench -- [options]
  --quick                 every scenario very briefly on a tiny data set (CI)
  --users N               seeded users (default 100000; --quick 200)
  --posts-per-user M      seeded posts per user (default 10)
  --concurrency 1,16,64   calls kept in flight (default 1,16,64; --quick 1,4; ExportPosts 1,2
                          unless this is given)
  --warmup S              warm-up seconds per implementation (default 3; --quick 0.2)
  --duration S            timed seconds per implementation (default 10; --quick 0.5)
  --rounds R              timed slices per implementation, interleaved (default 5; --quick 1)
  --pool N                PostgreSQL pool size of every implementation (default 10)
  --workers N             load generator threads (default 1)
  --scenario ID           run only these scenarios (repeatable)
  --impl NAME             run only these implementations (repeatable; service always runs)
  --out DIR               where results go (default bench/results; --quick bench/results/tmp)
  --fixed-request         every call sends the scenario's sample request (one id), as a load generator
                          with a fixed body does; concurrent reads of one key then share statements
  --profile               V8 CPU profiles of the server processes in bench/results/tmp/profiles/<impl>/
                          (one file per thread; the largest is the main thread)`;

/**
 * resultsDir is where a bench writes its report: --out when given, else
 * bench/results, or bench/results/tmp (ignored by git) with --quick, so a CI
 * run never overwrites the committed results.
 */
export const resultsDir = (root: string, out: string | undefined, quick: boolean) =>
  path.resolve(root, out ?? (quick ? "bench/results/tmp" : "bench/results"));

/** positiveNumber reads a positive option value (fallback when absent); help follows the error message. */
export function positiveNumber(
  value: string | undefined,
  name: string,
  fallback: number,
  integer = true,
  help = usage,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isSafeInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got "${value}"\n\n${help}`);
  }
  return n;
}

/** parseBenchArgs reads argv; --quick changes the defaults, explicit flags still win. */
export function parseBenchArgs(argv: string[], root: string): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean", default: false },
      users: { type: "string" },
      "posts-per-user": { type: "string" },
      concurrency: { type: "string" },
      warmup: { type: "string" },
      duration: { type: "string" },
      rounds: { type: "string" },
      pool: { type: "string" },
      workers: { type: "string" },
      scenario: { type: "string", multiple: true },
      impl: { type: "string", multiple: true },
      out: { type: "string" },
      profile: { type: "boolean", default: false },
      "fixed-request": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const quick = values.quick;
  const concurrency = (values.concurrency ?? (quick ? "1,4" : "1,16,64"))
    .split(",")
    .map((c) => positiveNumber(c.trim(), "concurrency", 1));
  const chosen = values.impl ?? [...implementations];
  for (const name of chosen) {
    if (!(implementations as readonly string[]).includes(name)) {
      throw new Error(`--impl must be one of ${implementations.join(", ")}, got "${name}"`);
    }
  }
  return {
    quick,
    users: positiveNumber(values.users, "users", quick ? 200 : 100_000),
    postsPerUser: positiveNumber(values["posts-per-user"], "posts-per-user", 10),
    concurrency,
    concurrencyGiven: values.concurrency !== undefined,
    warmupMs: positiveNumber(values.warmup, "warmup", quick ? 0.2 : 3, false) * 1000,
    durationMs: positiveNumber(values.duration, "duration", quick ? 0.5 : 10, false) * 1000,
    rounds: positiveNumber(values.rounds, "rounds", quick ? 1 : 5),
    pool: positiveNumber(values.pool, "pool", 10),
    workers: positiveNumber(values.workers, "workers", 1),
    scenarios: values.scenario,
    implementations: implementations.filter((i) => i === "service" || chosen.includes(i)),
    outDir: resultsDir(root, values.out, quick),
    profile: values.profile,
    fixedRequest: values["fixed-request"],
  };
}

/** ScriptArgs is the command line of a bench script beside `npm run bench`: what every one takes, and its own. */
export interface ScriptArgs {
  quick: boolean;
  /** root is the project's directory. */
  root: string;
  /** outDir is --out, else bench/results (bench/results/tmp with --quick, so CI never overwrites the committed results). */
  outDir: string;
  /** number reads --name as a positive number, fallback when absent; a bad value throws with the usage. */
  number(name: string, fallback: number, integer?: boolean): number;
  /** text is --name as given, if it was. */
  text(name: string): string | undefined;
  /** flag is whether --name was given. */
  flag(name: string): boolean;
}

/**
 * scriptArgs parses a bench script's options: `strings` and `flags` of its
 * own, and --quick, --out and --help, which every script takes. --help prints
 * usage and exits; an unknown option throws.
 */
export function scriptArgs(usage: string, strings: string[], flags: string[] = []): ScriptArgs {
  const options: Record<string, { type: "string" } | { type: "boolean"; default: boolean }> = {};
  for (const name of [...strings, "out"]) options[name] = { type: "string" };
  for (const name of [...flags, "quick", "help"]) options[name] = { type: "boolean", default: false };
  const values = parseArgs({ options }).values as Record<string, string | boolean | undefined>;
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  const quick = values.quick === true;
  const text = (name: string) => values[name] as string | undefined;
  const root = path.resolve(import.meta.dirname, "..");
  return {
    quick,
    root,
    outDir: resultsDir(root, text("out"), quick),
    number: (name, fallback, integer = true) => positiveNumber(text(name), name, fallback, integer, usage),
    text,
    flag: (name) => values[name] === true,
  };
}
