import type { Knex } from "knex";

// A request_id (AIP-155) may now create a whole batch (BatchCreatePosts):
// idempotency_keys keeps every id it created, in request order, so that a
// retry replays the same posts. resource_id stays the first of them; rows
// written before this migration have only resource_id.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("idempotency_keys", (t) => {
    t.specificType("resource_ids", "bigint[]");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("idempotency_keys", (t) => {
    t.dropColumn("resource_ids");
  });
}
