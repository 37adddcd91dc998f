import type { Knex } from "knex";
import { Post } from "../posts/model.js";
import { User } from "../users/model.js";

/** BulkLoadOptions sizes a seed: how many users, posts each, and users per transaction. */
export interface BulkLoadOptions {
  users: number;
  postsPerUser: number;
  batchSize: number;
}

// PostgreSQL takes at most 65,535 bindings a statement; a post row has 3.
const postsPerStatement = 10_000;

/**
 * bulkLoad writes users and their posts through the Objection models, one
 * transaction per batch of users: a multi-row INSERT ... RETURNING for the
 * users, then multi-row INSERTs for their posts. A failed batch rolls back
 * whole; onBatch hears the running totals after each commit.
 */
export async function bulkLoad(
  db: Knex,
  options: BulkLoadOptions,
  onBatch: (totals: { users: number; posts: number }) => void,
): Promise<{ users: number; posts: number }> {
  const totals = { users: 0, posts: 0 };
  while (totals.users < options.users) {
    const first = totals.users;
    const count = Math.min(options.batchSize, options.users - first);
    const posts = await User.transaction(db, async (trx) => {
      const rows = Array.from({ length: count }, (_, i) => ({
        name: `Seed User ${first + i + 1}`,
        age: (first + i) % 100,
      }));
      const users = await User.query(trx).insert(rows).returning("id");
      const postRows = users.flatMap((user, i) =>
        Array.from({ length: options.postsPerUser }, (_, j) => ({
          userId: user.id,
          title: `Post ${j + 1} of seed user ${first + i + 1}`,
          content: "Loaded by blog-service seed.",
        })),
      );
      for (let at = 0; at < postRows.length; at += postsPerStatement) {
        await Post.query(trx).insert(postRows.slice(at, at + postsPerStatement));
      }
      return postRows.length;
    });
    totals.users += count;
    totals.posts += posts;
    onBatch({ ...totals });
  }
  return totals;
}
