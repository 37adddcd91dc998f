import type { Knex } from "knex";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { createDatabase } from "./knex.js";
import { ReplicaSet } from "./replicas.js";

/** OpenDatabase is the Knex instance plus how to close it and what it runs on. */
export interface OpenDatabase {
  db: Knex;
  /** replicas are the read replicas (DATABASE_REPLICA_URLS); undefined when there are none. */
  replicas: ReplicaSet | undefined;
  /**
   * migrator is the Knex migrations run on: DATABASE_MIGRATION_URL (a direct
   * connection to the primary, when DATABASE_URL goes through a pooler),
   * opened on first use, else db.
   */
  migrator(): Knex;
  /** close destroys the pools, then stops the embedded PostgreSQL if one was started. */
  close(): Promise<void>;
}

/**
 * openDatabase connects to DATABASE_URL or, when it is unset, starts the
 * embedded PostgreSQL (data in EMBEDDED_POSTGRES_DIR) and connects to that.
 */
export async function openDatabase(config: Config, log: Logger): Promise<OpenDatabase> {
  let url = config.databaseUrl;
  let stopEmbedded = async () => {};
  if (url === undefined && (config.databaseReplicaUrls.length > 0 || config.databaseMigrationUrl !== undefined)) {
    throw new Error("DATABASE_REPLICA_URLS and DATABASE_MIGRATION_URL need DATABASE_URL (the primary)");
  }
  if (url === undefined) {
    // A development convenience: loaded only here, and not shipped in the production image.
    const { startEmbeddedPostgres } = await import("../dev/embedded-postgres.js");
    const embedded = await startEmbeddedPostgres({
      dataDir: config.embeddedDataDir,
      log: (line) => log.debug({ postgres: line }, "embedded postgres"),
    });
    log.info({ dataDir: embedded.dataDir, port: embedded.port }, "started embedded PostgreSQL (DATABASE_URL is unset)");
    url = embedded.url;
    stopEmbedded = () => embedded.stop();
  }
  const options = {
    poolMax: config.poolMax,
    acquireTimeoutMs: config.poolAcquireTimeoutMs,
    logSql: config.logSql,
    preparedStatements: config.preparedStatements,
    log,
  };
  const db = createDatabase({ url, ...options });
  const replicas =
    config.databaseReplicaUrls.length === 0
      ? undefined
      : ReplicaSet.open({
          urls: config.databaseReplicaUrls,
          ...options,
        });
  const migrationUrl = config.databaseMigrationUrl;
  let migrator: Knex | undefined;
  return {
    db,
    replicas,
    migrator: () =>
      (migrator ??=
        migrationUrl === undefined
          ? db
          : createDatabase({ url: migrationUrl, poolMax: 2, preparedStatements: config.preparedStatements, log })),
    close: async () => {
      if (migrator !== db) await migrator?.destroy();
      await replicas?.close();
      await db.destroy();
      await stopEmbedded();
    },
  };
}
