import type { Knex } from "knex";

// - Times in milliseconds: what google.protobuf.Timestamp round-trips through
//   a JavaScript Date, so keyset page tokens compare exactly what was returned.
// - version: bumped by every update, the source of etags (AIP-154).
// - idempotency_keys: request_ids of creates (AIP-155), shared by all replicas.
// - service_keys: secrets shared by all replicas (the page-token key).
// - Indexes for each ListUsers/ListPosts order, so keyset pages cost the same
//   at any depth.
const timeColumns = ["create_time", "update_time"];

export async function up(knex: Knex): Promise<void> {
  for (const table of ["users", "posts"]) {
    await knex.schema.alterTable(table, (t) => {
      for (const column of timeColumns) {
        t.timestamp(column, { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now()).alter();
      }
      t.bigInteger("version").notNullable().defaultTo(1);
    });
  }
  await knex.schema.alterTable("users", (t) => {
    t.index(["name", "id"], "users_name_id_index");
    t.index(["age", "id"], "users_age_id_index");
    t.index(["create_time", "id"], "users_create_time_id_index");
    t.index(["update_time", "id"], "users_update_time_id_index");
  });
  await knex.schema.alterTable("posts", (t) => {
    t.index(["title", "id"], "posts_title_id_index");
    t.index(["create_time", "id"], "posts_create_time_id_index");
    t.index(["update_time", "id"], "posts_update_time_id_index");
  });
  await knex.schema.createTable("idempotency_keys", (t) => {
    t.uuid("request_id").primary();
    t.text("method").notNullable();
    t.binary("request_hash").notNullable();
    t.bigInteger("resource_id");
    t.timestamp("create_time", { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
    t.index(["create_time"], "idempotency_keys_create_time_index");
  });
  await knex.schema.createTable("service_keys", (t) => {
    t.text("name").primary();
    t.binary("value").notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("service_keys");
  await knex.schema.dropTable("idempotency_keys");
  await knex.schema.alterTable("posts", (t) => {
    t.dropIndex([], "posts_title_id_index");
    t.dropIndex([], "posts_create_time_id_index");
    t.dropIndex([], "posts_update_time_id_index");
  });
  await knex.schema.alterTable("users", (t) => {
    t.dropIndex([], "users_name_id_index");
    t.dropIndex([], "users_age_id_index");
    t.dropIndex([], "users_create_time_id_index");
    t.dropIndex([], "users_update_time_id_index");
  });
  for (const table of ["users", "posts"]) {
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn("version");
      for (const column of timeColumns) {
        t.timestamp(column, { useTz: true }).notNullable().defaultTo(knex.fn.now()).alter();
      }
    });
  }
}
