import assert from "node:assert/strict";
import net from "node:net";
import { it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import knex from "knex";
import pg from "pg";
import { monitorDatabase } from "./monitor.js";

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
  const heard: boolean[] = [];
  const monitor = monitorDatabase(db, { intervalMs: 50, timeoutMs: 1000, onChange: (up) => heard.push(up) });
  try {
    await monitor.start();
    assert.deepEqual(heard, [true]);
    assert.equal(await probeConnections(), 1);
    await monitor.stop();
    // The backend leaves pg_stat_activity just after it closes the socket.
    for (let tries = 0; (await probeConnections()) > 0; tries++) {
      assert.ok(tries < 100, "the probe's connection is gone");
      await delay(50);
    }
    assert.deepEqual(heard, [true], "nothing is heard after stop");
  } finally {
    await monitor.stop();
    await db.destroy();
  }
});

it("reports an unreachable database at once", async () => {
  const dead = new URL(url());
  dead.port = String(await closedPort());
  const db = database(dead.toString());
  const heard: boolean[] = [];
  const monitor = monitorDatabase(db, { intervalMs: 50, timeoutMs: 1000, onChange: (up) => heard.push(up) });
  try {
    await monitor.start();
    assert.deepEqual(heard, [false]);
  } finally {
    await monitor.stop();
    await db.destroy();
  }
});
