import { parseArgs } from "node:util";
import { loadConfig } from "../config.js";
import { migrateLatest } from "../db/migrator.js";
import { openDatabase } from "../db/open.js";
import { createLogger } from "../log.js";
import { bulkLoad } from "./bulk-load.js";
import { progress } from "./progress.js";

/** seedUsage is the seed command's synopsis. */
export const seedUsage = "seed --users N [--posts-per-user M] [--batch-size B]";

function count(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    throw new RangeError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

/**
 * runSeed bulk-loads fake users and posts into the configured database
 * (migrating it first unless MIGRATE_ON_START=0), showing its progress.
 */
export async function runSeed(args: string[]): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args,
      options: {
        users: { type: "string" },
        "posts-per-user": { type: "string" },
        "batch-size": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.users === undefined) throw new RangeError("--users is required");
    options = {
      users: count("users", values.users, 0, 1),
      postsPerUser: count("posts-per-user", values["posts-per-user"], 0, 0),
      batchSize: count("batch-size", values["batch-size"], 1000, 1),
    };
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: blog-service ${seedUsage}`);
    return 2;
  }
  const config = loadConfig();
  const { db, migrator, close } = await openDatabase(config, createLogger(config.logLevel));
  try {
    if (config.migrateOnStart) await migrateLatest(migrator());
    const bar = progress("seed users", options.users);
    const totals = await bulkLoad(db, options, (done) => bar.update(done.users, `${done.posts} posts`));
    bar.stop(`seeded ${totals.users} users and ${totals.posts} posts`);
    return 0;
  } finally {
    await close();
  }
}
