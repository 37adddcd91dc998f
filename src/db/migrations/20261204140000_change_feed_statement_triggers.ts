import type { Knex } from "knex";
import { recordChangeFunction } from "./20261204040000_change_feed.js";

// The change feed's rows are written by statement triggers instead of row
// triggers: one INSERT ... SELECT over the statement's transition table, not
// a PL/pgSQL call and an INSERT per changed row. The rows are the same: one
// per changed row of users or posts, in the order the statement changed them,
// with data the row as written and its numbers as JSON strings. The numbers
// are now named (the trigger's arguments after the first two) rather than
// found by expanding every field of every row with jsonb_each, which cost
// more than the rest of the trigger: test/watch.test.ts checks that the
// names are every numeric column of both tables, and that data is what the
// row triggers wrote. For a 1,000-row INSERT into posts on the 2-core
// development machine, EXPLAIN ANALYZE gave the trigger 17-24 ms instead of
// 24-31 ms, and psql timed the INSERT with its COMMIT at 47-54 ms instead of
// 63-74 ms (three alternating rounds, the first statement of each left out).

const tables = [
  { table: "users", resource: "user", userColumn: "id", numbers: ["id", "age", "version"] },
  { table: "posts", resource: "post", userColumn: "user_id", numbers: ["id", "user_id", "version"] },
];

const events = [
  { event: "INSERT", transition: "NEW TABLE AS changed_rows" },
  { event: "UPDATE", transition: "NEW TABLE AS changed_rows" },
  { event: "DELETE", transition: "OLD TABLE AS changed_rows" },
];

const triggerName = (event: string) => `record_${event.toLowerCase()}s`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION record_changes() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      numbers text[] := TG_ARGV[2:];
    BEGIN
      INSERT INTO changes (resource, operation, resource_id, user_id, data)
      SELECT TG_ARGV[0], lower(TG_OP), (w->>'id')::bigint, (w->>TG_ARGV[1])::bigint,
        CASE WHEN TG_OP = 'DELETE' THEN NULL
        ELSE w || (SELECT jsonb_object_agg(n, w->>n) FROM unnest(numbers) AS n) END
      FROM (SELECT to_jsonb(r) AS w FROM changed_rows AS r) AS written;
      RETURN NULL;
    END $$;
  `);
  for (const { table, resource, userColumn, numbers } of tables) {
    await knex.raw(`DROP TRIGGER record_change ON ${table}`);
    for (const { event, transition } of events) {
      const args = [resource, userColumn, ...numbers].map((a) => `'${a}'`).join(", ");
      await knex.raw(`
        CREATE TRIGGER ${triggerName(event)} AFTER ${event} ON ${table}
          REFERENCING ${transition} FOR EACH STATEMENT EXECUTE FUNCTION record_changes(${args})
      `);
    }
  }
  await knex.raw("DROP FUNCTION record_change()");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(recordChangeFunction);
  for (const { table, resource, userColumn } of tables) {
    for (const { event } of events) await knex.raw(`DROP TRIGGER ${triggerName(event)} ON ${table}`);
    await knex.raw(`
      CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON ${table}
        FOR EACH ROW EXECUTE FUNCTION record_change('${resource}', '${userColumn}')
    `);
  }
  await knex.raw("DROP FUNCTION record_changes()");
}
