import type { Knex } from "knex";

/** pruneBatchCommits bounds the commits one pruning statement deletes (with their changes). */
export const pruneBatchCommits = 1000;

/**
 * pruneChanges forgets the commits older than retentionMs, and their changes,
 * oldest first, in statements of at most pruneBatchCommits commits each, so
 * pruning is bounded work that never holds a lock long. It only ever deletes
 * a prefix of the feed (it stops at the first commit young enough to keep)
 * and records how far it went in change_feed.pruned_through, which is how a
 * watch behind it learns that its position expired instead of skipping what
 * was deleted. Returns the number of commits forgotten.
 */
export async function pruneChanges(db: Knex, retentionMs: number): Promise<number> {
  let pruned = 0;
  for (;;) {
    const { rows } = await db.raw<{ rows: { count: bigint }[] }>(
      `WITH candidates AS (
         SELECT seq, xid, commit_time < now() - ? * interval '1 millisecond' AS old
         FROM change_commits ORDER BY seq LIMIT ?
       ), cut AS (
         SELECT coalesce((SELECT min(seq) FROM candidates WHERE NOT old) - 1, (SELECT max(seq) FROM candidates)) AS through
       ), doomed AS (
         SELECT xid FROM candidates, cut WHERE seq <= cut.through
       ), gone_changes AS (
         DELETE FROM changes WHERE xid IN (SELECT xid FROM doomed)
       ), gone AS (
         DELETE FROM change_commits WHERE xid IN (SELECT xid FROM doomed) RETURNING seq
       ), moved AS (
         UPDATE change_feed SET pruned_through = greatest(pruned_through, (SELECT max(seq) FROM gone))
         WHERE EXISTS (SELECT 1 FROM gone)
       )
       SELECT count(*) AS count FROM gone`,
      [retentionMs, pruneBatchCommits],
    );
    const count = Number(rows[0]?.count ?? 0n);
    pruned += count;
    if (count < pruneBatchCommits) return pruned;
  }
}
