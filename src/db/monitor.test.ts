import assert from "node:assert/strict";
import net from "node:net";
import { it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import knex from "knex";
import pg from "pg";
import { monitorDatabase } from "./monitor.js";
import type { DatabaseVerdict } from "./monitor.js";

const url = () => {
  const value = process.env.DATABASE_URL;
  if (!value) throw new Error("DATABASE_URL is unset: run the tests with `npm test`");
  return value;
};

/** A Knex instance whose connections (and so the probe's) carry a name of this test's own. */
const name = `monitor-test-${process.pid}`;
const database = (connectionString: string) =>
  knex({ client: "pg", connection: { connectionString, application_name: name } });

async function probeConnections(): Promise<number> {
  const client = new pg.Client(url());
  await client.connect();
  try {
    const { rows } = await client.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1", [
      `${name} health probe`,
    ]);
    return rows.length;
  } finally {
    await client.end();
  }
}

/** A port nobody listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it("reports a reachable database once started, and leaves no connection behind when stopped", async () => {
  const db = database(url());
  const heard: DatabaseVerdict[] = [];
  const monitor = monitorDatabase(db, { intervalMs: 50, timeoutMs: 1000, onChange: (up) => heard.push(up) });
  try {
    await monitor.start();
    assert.deepEqual(heard, ["serving"]);
    assert.equal(await probeConnections(), 1);
    await monitor.stop();
    // The backend leaves pg_stat_activity just after it closes the socket.
    for (let tries = 0; (await probeConnections()) > 0; tries++) {
      assert.ok(tries < 100, "the probe's connection is gone");
      await delay(50);
    }
    assert.deepEqual(heard, ["serving"], "nothing is heard after stop");
  } finally {
    await monitor.stop();
    await db.destroy();
  }
});

it("reports an unreachable database at once", async () => {
  const dead = new URL(url());
  dead.port = String(await closedPort());
  const db = database(dead.toString());
  const heard: DatabaseVerdict[] = [];
  const monitor = monitorDatabase(db, { intervalMs: 50, timeoutMs: 1000, onChange: (up) => heard.push(up) });
  try {
    await monitor.start();
    assert.deepEqual(heard, ["unreachable"]);
  } finally {
    await monitor.stop();
    await db.destroy();
  }
});

it("reports a pool whose callers have waited starvedAfterMs with no free connection, and its recovery", async () => {
  const db = knex({
    client: "pg",
    connection: { connectionString: url(), application_name: name },
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout: 10_000,
  });
  const heard: DatabaseVerdict[] = [];
  const monitor = monitorDatabase(db, {
    intervalMs: 20,
    timeoutMs: 1000,
    starvedAfterMs: 100,
    onChange: (v) => heard.push(v),
  });
  try {
    await monitor.start();
    const trx = await db.transaction(); // holds the pool's only connection
    const waiting = db.raw("SELECT 1").then(() => "done"); // waits for it (then() sends it)
    const until = async (verdict: DatabaseVerdict) => {
      for (let tries = 0; heard.at(-1) !== verdict; tries++) {
        assert.ok(tries < 500, `heard ${heard.join(", ")}`);
        await delay(20);
      }
    };
    try {
      await until("pool-starved");
    } finally {
      await trx.rollback();
    }
    assert.equal(await waiting, "done");
    await until("serving");
    assert.deepEqual(heard, ["serving", "pool-starved", "serving"]);
  } finally {
    await monitor.stop();
    await db.destroy();
  }
});
