import { loadConfig } from "./config.js";
import { migrateDown, migrateLatest, migrationStatus } from "./db/migrator.js";
import { openDatabase } from "./db/open.js";
import { createLogger } from "./log.js";

// `npm run migrate [up|down|status]`: the same migrations the service runs at
// start-up, for deployments that migrate in a separate job (MIGRATE_ON_START=0).
const command = process.argv[2] ?? "up";
const actions: Record<string, (db: Parameters<typeof migrateLatest>[0]) => Promise<unknown>> = {
  up: migrateLatest,
  down: migrateDown,
  status: migrationStatus,
};
const action = actions[command];
if (action === undefined) {
  console.error(`usage: npm run migrate -- [up|down|status] (got "${command}")`);
  process.exit(2);
}
const config = loadConfig();
const { db, close } = await openDatabase(config, createLogger(config.logLevel));
try {
  console.log(JSON.stringify({ [command]: await action(db) }));
} finally {
  await close();
}
