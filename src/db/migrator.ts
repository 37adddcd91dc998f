import { readdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Knex } from "knex";
import pg from "pg";
import { connectionSettingsFor } from "./knex.js";
import { throughPooler } from "./pooler.js";
import type { KeyedClient } from "./pooler.js";

const directory = path.join(import.meta.dirname, "migrations");
const migrationFile = /^\d{14}_[a-z0-9_]+\.(ts|js)$/;

/**
 * Records migrations by name without extension, so a database migrated while
 * running TypeScript (tsx, `.ts`) is still in step when running compiled `.js`.
 */
const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    const files = (await readdir(directory)).filter((f) => migrationFile.test(f) && !f.endsWith(".d.ts"));
    return files.sort();
  },
  getMigrationName: (file) => path.basename(file, path.extname(file)),
  getMigration: (file) => import(pathToFileURL(path.join(directory, file)).href) as Promise<Knex.Migration>,
};

// pg_advisory_lock key: two replicas starting at once migrate one after the other.
const lockKey = 0x626c6f67; // "blog"

/**
 * The lock is held on a connection of its own, outside the pool, so the
 * migrator can still use the pool (a pool of 1 would otherwise deadlock).
 * It is a session lock: through a transaction-mode pooler (PgBouncer) it
 * would stay behind on a server connection another client gets next, so a
 * connection whose backend is not the one it was opened with (a pooler hands
 * out keys of its own) is refused: migrations go to the primary directly
 * (DATABASE_MIGRATION_URL).
 */
async function withMigrationLock<T>(db: Knex, work: () => Promise<T>): Promise<T> {
  const lock = new pg.Client(await connectionSettingsFor(db));
  await lock.connect();
  try {
    if (await throughPooler(lock as unknown as KeyedClient)) {
      throw new Error(
        "migrations need a direct connection to PostgreSQL, not a connection pooler: set DATABASE_MIGRATION_URL to the primary",
      );
    }
    await lock.query("SELECT pg_advisory_lock($1)", [lockKey]);
    return await work();
  } finally {
    await lock.end();
  }
}

const config: Knex.MigratorConfig = { migrationSource, tableName: "knex_migrations" };

/** migrateLatest applies every pending migration; returns the names applied. */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await withMigrationLock(db, () => db.migrate.latest(config))) as [number, string[]];
  return applied;
}

/** migrateDown reverts the most recent migration; returns the names reverted. */
export async function migrateDown(db: Knex): Promise<string[]> {
  const [, reverted] = (await withMigrationLock(db, () => db.migrate.down(config))) as [number, string[]];
  return reverted;
}

/** migrationStatus lists applied and pending migration names. */
export async function migrationStatus(db: Knex): Promise<{ applied: string[]; pending: string[] }> {
  const [done, pending] = (await db.migrate.list(config)) as [{ name: string }[], string[]];
  return { applied: done.map((m) => m.name), pending: pending.map((p) => path.basename(p, path.extname(p))) };
}
