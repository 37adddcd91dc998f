import type { Knex } from "knex";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";
import { createDatabase } from "./knex.js";

/** OpenDatabase is the Knex instance plus how to close it and what it runs on. */
export interface OpenDatabase {
  db: Knex;
  /** close destroys the pool, then stops the embedded PostgreSQL if one was started. */
  close(): Promise<void>;
}

/**
 * openDatabase connects to DATABASE_URL or, when it is unset, starts the
 * embedded PostgreSQL (data in EMBEDDED_POSTGRES_DIR) and connects to that.
 */
export async function openDatabase(config: Config, log: Logger): Promise<OpenDatabase> {
  let url = config.databaseUrl;
  let stopEmbedded = async () => {};
  if (url === undefined) {
    const embedded = await startEmbeddedPostgres({
      dataDir: config.embeddedDataDir,
      log: (line) => log.debug({ postgres: line }, "embedded postgres"),
    });
    log.info({ dataDir: embedded.dataDir, port: embedded.port }, "started embedded PostgreSQL (DATABASE_URL is unset)");
    url = embedded.url;
    stopEmbedded = () => embedded.stop();
  }
  const db = createDatabase({ url, poolMax: config.poolMax, logSql: config.logSql, log });
  return {
    db,
    close: async () => {
      await db.destroy();
      await stopEmbedded();
    },
  };
}
