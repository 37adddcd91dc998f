import { readdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Knex } from "knex";

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

async function withMigrationLock<T>(db: Knex, work: () => Promise<T>): Promise<T> {
  const lock = await db.client.acquireConnection();
  try {
    await db.raw("SELECT pg_advisory_lock(?)", [lockKey]).connection(lock);
    try {
      return await work();
    } finally {
      await db.raw("SELECT pg_advisory_unlock(?)", [lockKey]).connection(lock);
    }
  } finally {
    await db.client.releaseConnection(lock);
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
