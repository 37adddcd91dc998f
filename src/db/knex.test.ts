import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { admin } from "../../test/helpers.js";
import { freePort } from "../../test/postgres-cluster.js";
import { NoWritablePrimary, classify } from "./errors.js";
import { createDatabase } from "./knex.js";
import { monitorDatabase } from "./monitor.js";
import type { DatabaseVerdict } from "./monitor.js";

const log = pino({ level: "silent" });
const url = () => {
  const value = process.env.DATABASE_URL;
  if (!value) throw new Error("DATABASE_URL is unset: run the tests with `npm test`");
  return value;
};

const run = (sql: string) => admin((c) => c.query(sql));

/** withDatabase points DATABASE_URL's server at another database. */
function withDatabase(database: string, query = ""): string {
  const u = new URL(url());
  u.pathname = `/${database}`;
  u.search = query;
  return u.toString();
}

/** multiHost is DATABASE_URL's server as the last of several hosts, the others refusing connections. */
async function multiHost(database: string): Promise<string> {
  const u = new URL(withDatabase(database));
  const dead = `127.0.0.1:${await freePort()}`;
  return `postgres://${u.username}@${dead},${u.hostname}:${u.port || 5432}${u.pathname}?target_session_attrs=read-write`;
}

const pid = async (db: ReturnType<typeof createDatabase>) =>
  (await db.raw<{ rows: { pid: number }[] }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;

describe("connections after a failover", () => {
  it("drops a connection whose statement found its server read-only, and keeps one after an ordinary error", async () => {
    const db = createDatabase({ url: url(), poolMax: 1, log });
    try {
      const first = await pid(db);
      await assert.rejects(db.raw("SELECT 1/0"), (e) => classify(e)?.failure === "invalid-value");
      assert.equal(await pid(db), first, "an ordinary error leaves the connection in the pool");
      // What a demoted primary's sessions see: a write fails with SQLSTATE 25006.
      await db.raw("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
      await assert.rejects(db.raw("CREATE TABLE never_created (a int)"), (e) => classify(e)?.failure === "read-only");
      assert.notEqual(await pid(db), first, "the read-only connection was dropped, not handed out again");
    } finally {
      await db.destroy();
    }
  });
});

describe("multi-host DATABASE_URL", () => {
  const readOnly = `blog_read_only_${process.pid}`;
  before(() => run(`CREATE DATABASE ${readOnly}`));
  after(() => run(`DROP DATABASE IF EXISTS ${readOnly} WITH (FORCE)`));

  it("connects to the host that answers and takes writes", async () => {
    const db = createDatabase({ url: await multiHost(new URL(url()).pathname.slice(1)), poolMax: 2, log });
    try {
      const { rows } = await db.raw<{ rows: { port: number }[] }>("SELECT inet_server_port() AS port");
      assert.equal(rows[0]!.port, Number(new URL(url()).port || 5432));
    } finally {
      await db.destroy();
    }
  });

  it("answers no-primary while every host is read-only, and health follows it back without a restart", async () => {
    await run(`ALTER DATABASE ${readOnly} SET default_transaction_read_only = on`);
    const plain = createDatabase({ url: withDatabase(readOnly), log });
    const db = createDatabase({ url: await multiHost(readOnly), poolMax: 2, log });
    const heard: DatabaseVerdict[] = [];
    const monitor = monitorDatabase(db, { intervalMs: 50, timeoutMs: 1000, onChange: (v) => heard.push(v) });
    try {
      await plain.raw("SELECT 1"); // a single-host URL without target_session_attrs connects as before
      await assert.rejects(
        db.raw("SELECT 1"),
        (e) => e instanceof NoWritablePrimary && e.reachable && classify(e)?.failure === "read-only",
      );
      await monitor.start();
      assert.deepEqual(heard, ["read-only"]);
      await run(`ALTER DATABASE ${readOnly} RESET default_transaction_read_only`);
      for (let tries = 0; heard.at(-1) !== "serving"; tries++) {
        assert.ok(tries < 200, `health serves again: ${heard.join(", ")}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await db.raw("CREATE TABLE written (a int)");
    } finally {
      await monitor.stop();
      await db.destroy();
      await plain.destroy();
    }
  });
});
