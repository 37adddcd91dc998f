import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { startEmbeddedPostgres } from "../../src/dev/embedded-postgres.js";

/** BenchDatabase is a database of the run's own, dropped (or its server stopped) by close. */
export interface BenchDatabase {
  url: string;
  /** where says in words what the run measures against. */
  where: string;
  close(): Promise<void>;
}

async function onServer<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * provisionDatabase creates a fresh database on DATABASE_URL's server when it
 * is set (never touching the existing ones), else starts an embedded
 * PostgreSQL in a temporary directory.
 */
export async function provisionDatabase(databaseUrl: string | undefined): Promise<BenchDatabase> {
  if (databaseUrl) {
    const name = `blog_bench_${process.pid}_${randomBytes(4).toString("hex")}`;
    await onServer(databaseUrl, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
    const url = new URL(databaseUrl);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      where: `database ${name} on DATABASE_URL's server (${url.host})`,
      close: () =>
        onServer(databaseUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)).then(
          () => {},
        ),
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "blog-service-bench-"));
  await chmod(dir, 0o755); // the postgres OS user (when we are root) must reach the data directory
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, "postgres") });
  return {
    url: embedded.url,
    where: `an embedded PostgreSQL in ${embedded.dataDir} (DATABASE_URL is unset)`,
    close: async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** postgresVersion is the server's version string, e.g. "15.14 (Debian 15.14-0+deb12u1)". */
export function postgresVersion(url: string): Promise<string> {
  return onServer(url, async (c) => String((await c.query("SHOW server_version")).rows[0]?.server_version));
}
