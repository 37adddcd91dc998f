import type { Knex } from "knex";
import { loadConfig } from "../config.js";
import { migrateDown, migrateLatest, migrationStatus } from "../db/migrator.js";
import { openDatabase } from "../db/open.js";
import { createLogger } from "../log.js";

const actions: Record<string, (db: Knex) => Promise<unknown>> = {
  up: migrateLatest,
  down: migrateDown,
  status: migrationStatus,
};

/** migrateUsage is the migrate command's synopsis. */
export const migrateUsage = "migrate [up|down|status]";

/**
 * runMigrate runs the migrations the service runs at start-up, for
 * deployments that migrate in a separate job (MIGRATE_ON_START=0), and prints
 * the result as one JSON line: `{"up":[applied...]}`, `{"down":[reverted...]}`
 * or `{"status":{"applied":[...],"pending":[...]}}`.
 */
export async function runMigrate(args: string[]): Promise<number> {
  const [command = "up", ...extra] = args;
  const action = actions[command];
  if (action === undefined || extra.length > 0) {
    console.error(`usage: blog-service ${migrateUsage} (got "${args.join(" ")}")`);
    return 2;
  }
  const config = loadConfig();
  const { migrator, close } = await openDatabase(config, createLogger(config.logLevel));
  try {
    console.log(JSON.stringify({ [command]: await action(migrator()) }));
    return 0;
  } finally {
    await close();
  }
}
