import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import type { Knex } from "knex";
import { pino } from "pino";
import { createTestDatabase, queryOnce } from "../../test/helpers.js";
import { loadConfig } from "../config.js";
import { until } from "../../test/poll.js";
import { classify } from "./errors.js";
import { createDatabase } from "./knex.js";
import type { DatabaseOptions } from "./knex.js";
import { StatementNames, prepareStatements } from "./prepared-statements.js";

const log = pino({ level: "silent" });
let database: Awaited<ReturnType<typeof createTestDatabase>>;

before(async () => {
  database = await createTestDatabase();
  await queryOnce(
    database.url,
    "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 10) AS i",
  );
});
after(() => database.drop());

const open = (options: Partial<DatabaseOptions> = {}) =>
  createDatabase({ url: database.url, poolMax: 1, log, ...options });

/** preparedOn lists the prepared statements of the connection db runs this on (a statement without parameters: never prepared itself). */
async function preparedOn(db: Knex): Promise<{ statement: string; runs: number }[]> {
  const { rows } = await db.raw<{ rows: { statement: string; runs: number }[] }>(
    "SELECT statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements ORDER BY statement",
  );
  return rows;
}

const pidOf = async (db: Knex) =>
  (await db.raw<{ rows: { pid: number }[] }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;

/** using runs work on a pool of its own (a pool of one unless options say otherwise), destroyed after. */
async function using(options: Partial<DatabaseOptions>, work: (db: Knex) => Promise<void>): Promise<void> {
  const db = open(options);
  try {
    await work(db);
  } finally {
    await db.destroy();
  }
}

/** thrice runs a statement three times: named from its second time, it runs prepared twice. */
async function thrice(run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 3; i++) await run();
}

const readSql = "SELECT items.* FROM items WHERE id = ?";
const read = async (db: Knex) => (await db.raw<{ rows: Record<string, unknown>[] }>(readSql, [1])).rows[0];

it("DATABASE_PREPARED_STATEMENTS is auto unless set; on and off take the usual spellings; anything else is refused", () => {
  assert.equal(loadConfig({}).preparedStatements, "auto");
  assert.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: "AUTO" }).preparedStatements, "auto");
  assert.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: "true" }).preparedStatements, "on");
  assert.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: "0" }).preparedStatements, "off");
  assert.throws(
    () => loadConfig({ DATABASE_PREPARED_STATEMENTS: "sometimes" }),
    /^Error: DATABASE_PREPARED_STATEMENTS must be auto, 1\/true\/yes\/on or 0\/false\/no\/off, got "sometimes"$/,
  );
});

describe("StatementNames", () => {
  it("names a text from the second time it is seen, always by the same name, and another text by another", () => {
    const names = new StatementNames(10);
    assert.equal(names.nameOf("SELECT $1"), undefined, "a text seen once may never come again");
    const name = names.nameOf("SELECT $1");
    assert.match(name ?? "", /^blog_[0-9a-f]{24}$/);
    assert.equal(names.nameOf("SELECT $1"), name);
    assert.equal(names.nameOf("SELECT $2"), undefined);
    assert.notEqual(names.nameOf("SELECT $2"), name);
  });

  it("names at most maxNames texts; every other text stays unnamed", () => {
    const names = new StatementNames(3);
    const texts = Array.from({ length: 10 }, (_, i) => `SELECT $1 + ${i}`);
    for (const text of texts) names.nameOf(text);
    const named = texts.map((text) => names.nameOf(text));
    assert.equal(named.filter((n) => n !== undefined).length, 3);
    assert.deepEqual(
      texts.map((text) => names.nameOf(text)),
      named,
      "the named texts keep their names",
    );
  });
});

describe("prepared statements on PostgreSQL", () => {
  afterEach(() => queryOnce(database.url, "ALTER TABLE items DROP COLUMN IF EXISTS extra"));

  it("prepares a statement with parameters once per connection and binds it afterwards, answering as unprepared", () =>
    using({}, (db) =>
      using({ preparedStatements: "off" }, async (off) => {
        const sql = "SELECT id, name FROM items WHERE id = any(?::bigint[]) ORDER BY id";
        for (const ids of [[1], [2, 3], [4, 5, 6], [10, 1]]) {
          const [prepared, unprepared] = await Promise.all([db.raw(sql, [ids]), off.raw(sql, [ids])]);
          assert.deepEqual(prepared.rows, unprepared.rows);
          assert.deepEqual(
            prepared.rows.map((r: { name: string }) => r.name),
            ids.toSorted((a, b) => a - b).map((i) => `item ${i}`),
          );
        }
        await thrice(() => db.raw("SELECT count(*) FROM items"));
        await db.transaction(async (trx) => {
          for (const id of [3, 3, 4]) {
            const { rows } = await trx.raw("SELECT id FROM items WHERE id = ? FOR UPDATE", [id]);
            assert.deepEqual(rows, [{ id: BigInt(id) }]);
          }
        });
        assert.deepEqual(await preparedOn(db), [
          // Named from the second time each text is seen; without parameters, never.
          { statement: "SELECT id FROM items WHERE id = $1 FOR UPDATE", runs: 2 },
          { statement: "SELECT id, name FROM items WHERE id = any($1::bigint[]) ORDER BY id", runs: 3 },
        ]);
        assert.deepEqual(await preparedOn(off), []);
      }),
    ));

  it("prepares at most maxNames distinct texts per connection and runs the others unnamed, every answer right", () =>
    using({ preparedStatements: "off" }, async (db) => {
      prepareStatements(db, { mode: "on", maxNames: 3 });
      for (let round = 0; round < 3; round++) {
        for (let t = 0; t < 10; t++) {
          const { rows } = await db.raw(`SELECT ?::int + ${t} AS n`, [round]);
          assert.deepEqual(rows, [{ n: round + t }]);
        }
      }
      assert.equal((await preparedOn(db)).length, 3);
    }));

  it("survives ADD COLUMN under a prepared `items.*`: the statement runs again, and every connection prepares afresh", () =>
    using({ poolMax: 2 }, async (db) => {
      // Two transactions hold both connections of the pool: each, once it holds its connection,
      // waits until the other holds one too (else the first could finish and lend its connection
      // to the second, as the pool opens a second one only as fast as it can).
      const onBoth = <T>(work: (trx: Knex.Transaction) => Promise<T>) => {
        let arrived = 0;
        let bothHold!: () => void;
        const both = new Promise<void>((resolve) => (bothHold = resolve));
        const held = async (trx: Knex.Transaction) => {
          if (++arrived === 2) bothHold();
          await both;
          return work(trx);
        };
        return Promise.all([db.transaction(held), db.transaction(held)]);
      };
      const pids = await onBoth(async (trx) => {
        await thrice(() => read(trx));
        assert.deepEqual(
          (await preparedOn(trx)).map((p) => p.statement),
          ["SELECT items.* FROM items WHERE id = $1"],
        );
        return pidOf(trx);
      });
      assert.notEqual(pids[0], pids[1]);
      await queryOnce(database.url, "ALTER TABLE items ADD COLUMN extra int NOT NULL DEFAULT 7");
      assert.deepEqual(await read(db), { id: 1n, name: "item 1", extra: 7 });
      // In a transaction a stale statement could not run again: the other connection did not wait to find out.
      const rows = await onBoth(async (trx) => [await read(trx), await pidOf(trx)] as const);
      assert.deepEqual(
        rows.map(([row]) => row),
        [
          { id: 1n, name: "item 1", extra: 7 },
          { id: 1n, name: "item 1", extra: 7 },
        ],
      );
      assert.deepEqual(rows.map(([, pid]) => pid).sort(), pids.sort(), "the same two connections");
    }));

  it("in a transaction, a statement a schema change made stale fails as a conflict (retry the call), and the next runs", () =>
    using({}, async (db) => {
      await db.transaction((trx) => thrice(() => read(trx)));
      await queryOnce(database.url, "ALTER TABLE items ADD COLUMN extra int");
      await assert.rejects(
        db.transaction((trx) => read(trx)),
        (e) => classify(e)?.failure === "conflict",
      );
      assert.deepEqual(await db.transaction((trx) => read(trx)), { id: 1n, name: "item 1", extra: null });
      assert.equal((await preparedOn(db)).length, 1);
    }));

  it("keeps a statement prepared after one of its runs is cancelled", () =>
    using({}, async (db) => {
      const sleep = "SELECT pg_sleep(?) AS slept";
      await thrice(() => db.raw(sleep, [0]));
      const pid = await pidOf(db);
      const cancelled = assert.rejects(db.raw(sleep, [60]), (e) => classify(e)?.failure === "statement-cancelled");
      await until("the sleep runs", async () => {
        const rows = await queryOnce(
          database.url,
          "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
          [pid],
        );
        return rows.length === 1;
      });
      await queryOnce(database.url, "SELECT pg_cancel_backend($1)", [pid]);
      await cancelled;
      await db.raw(sleep, [0]);
      assert.equal(await pidOf(db), pid);
      assert.deepEqual(
        await preparedOn(db),
        [{ statement: "SELECT pg_sleep($1) AS slept", runs: 4 }],
        "not prepared again",
      );
    }));

  it("prepares again on a new connection when the old one is gone (as after a failover)", () =>
    using({}, async (db) => {
      await thrice(() => read(db));
      const pid = await pidOf(db);
      await queryOnce(database.url, "SELECT pg_terminate_backend($1)", [pid]);
      await until("a new connection answers", () =>
        read(db).then(
          () => true,
          () => false,
        ),
      );
      assert.notEqual(await pidOf(db), pid);
      assert.deepEqual(await read(db), { id: 1n, name: "item 1" });
      assert.deepEqual(await preparedOn(db), [{ statement: "SELECT items.* FROM items WHERE id = $1", runs: 2 }]);
    }));
});
