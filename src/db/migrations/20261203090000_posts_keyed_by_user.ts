import type { Knex } from "knex";

// Ready for Citus (docs/scaling.md): posts will be distributed by user_id,
// co-located with users (distributed by id), and Citus enforces a unique
// constraint of a distributed table only when it includes the distribution
// column. So the primary key of posts becomes (user_id, id): it serves "a
// user's posts in id order" (the old posts_user_id_id_index, now redundant)
// and cascades from users. Ids stay unique by their identity sequence; a
// plain index on id serves GetPost, UpdatePost and DeletePost, which the API
// addresses by id alone. Changing a key is cheap now and costly later.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("posts", (t) => {
    t.dropPrimary("posts_pkey");
    t.primary(["user_id", "id"], { constraintName: "posts_pkey" });
    t.index(["id"], "posts_id_index");
    t.dropIndex([], "posts_user_id_id_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("posts", (t) => {
    t.index(["user_id", "id"], "posts_user_id_id_index");
    t.dropIndex([], "posts_id_index");
    t.dropPrimary("posts_pkey");
    t.primary(["id"], { constraintName: "posts_pkey" });
  });
}
