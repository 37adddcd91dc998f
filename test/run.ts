import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../src/dev/embedded-postgres.js";
import { splitTiers } from "./tiers.js";

// `npm test`: runs every *.test.ts with node's test runner against
// DATABASE_URL, or, when it is unset, against an embedded PostgreSQL started
// for this run only. Arguments select files: `npm test -- test/users.test.ts`;
// `--tier unit` or `--tier e2e` (npm run test:unit, npm run test:e2e) selects
// one tier of test/tiers.ts.
const root = path.resolve(import.meta.dirname, "..");

async function testFiles(): Promise<string[]> {
  const found: string[] = [];
  for (const dir of ["test", "src", "scripts"]) {
    const entries = await readdir(path.join(root, dir), { recursive: true });
    found.push(...entries.filter((f) => f.endsWith(".test.ts")).map((f) => path.join(dir, f)));
  }
  return found.sort();
}

// `--tier` is taken out by hand rather than by parseArgs, so that every other
// argument still reaches node as before: files, or options such as
// `--test-name-pattern`, with or without a tier.
const args = process.argv.slice(2);
const tierAt = args.indexOf("--tier");
const tier = tierAt === -1 ? undefined : args.splice(tierAt, 2)[1];
if (tierAt !== -1 && tier !== "unit" && tier !== "e2e") throw new Error(`--tier is unit or e2e, not ${tier}`);
// Split on every run, `npm test` included, so that CI catches a stale E2E_FILES.
const all = await testFiles();
const tiers = splitTiers(all);
const files = tier === "unit" || tier === "e2e" ? [...args, ...tiers[tier]] : args.length > 0 ? args : all;
// A unit file spends most of its time starting (tsx, the module graph, a
// database of its own) and a developer runs the tier alone, so it takes every
// core. Node's default leaves one core free, which is one file at a time on a
// two-core machine (README.md has the figures); `npm test` and the e2e tier
// keep that default, as their files start processes of their own.
const concurrency = tier === "unit" ? [`--test-concurrency=${os.availableParallelism()}`] : [];
let databaseUrl = process.env.DATABASE_URL;
let cleanup = async () => {};
if (!databaseUrl) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "blog-service-test-"));
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, "postgres"), database: "postgres" });
  console.log(`# DATABASE_URL is unset: testing against an embedded PostgreSQL on port ${embedded.port}`);
  databaseUrl = embedded.url;
  cleanup = async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

const child = spawn(process.execPath, ["--import", "tsx", "--test", ...concurrency, ...files], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, DATABASE_URL: databaseUrl },
});
const code = await new Promise<number>((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await cleanup();
process.exit(code);
