import type { Knex } from "knex";
import type { FeedPosition } from "./change-position.js";

/*
 * The change feed: what WatchUsers and WatchPosts read (tables and triggers in
 * migrations/20261204040000_change_feed.ts).
 *
 * Order. Changes are delivered in (seq, id) order: seq numbers the committing
 * transactions in commit order, id orders the changes of one transaction as
 * they were made. seq is taken by a deferred trigger at commit time, under a
 * transaction-level advisory lock that is released only after the
 * transaction's commit is visible to every other session (PostgreSQL makes a
 * commit visible, then releases its locks). So if transaction A takes seq n
 * and B takes seq m > n, B took the lock after A released it, that is after A
 * became visible.
 *
 * No gap. A reader's statement runs on one snapshot. If that snapshot sees
 * commit m, it sees every commit n < m that committed at all: B (m) committed
 * after A (n) was visible, and the snapshot was taken after B committed. So
 * the commits a snapshot sees form a prefix of seq (with holes only where a
 * transaction rolled back after taking its seq, which wrote nothing). A reader
 * that has delivered up to (m, i) and continues after it can never later find
 * a commit n < m: it was visible already, and delivered. Transactions that
 * started, took transaction ids or row locks in another order do not matter:
 * only the order of their commits does, and that is seq.
 *
 * Why not transaction ids (xid8 and the snapshot's xmin)? Reading only below
 * xmin does close the gap, but xid order is the order transactions first
 * wrote, not the order they committed: B (older xid) may update a row after
 * A (newer xid) updated and committed it, and xid order would deliver B's
 * update of that row before A's, so a watcher's copy would end at A's
 * version. seq keeps each resource's changes in the order its writers held
 * its row lock. The price: committing writers queue on one lock for the
 * moment of their commit, as NOTIFY already makes them do (bench/watch.ts).
 *
 * Consistent with List: a listing reads its rows and the head of the feed in
 * one statement (listAtHead), so in one snapshot, and a watch from there
 * delivers exactly the commits the listing did not see.
 */

/** ChangeRow is one committed change of a user or a post, as the feed delivers it. */
export interface ChangeRow {
  seq: bigint;
  id: bigint;
  operation: "insert" | "update" | "delete";
  resourceId: bigint;
  userId: bigint;
  /** data is the row as written (numbers as strings, snake_case keys); null for a deletion. */
  data: Record<string, string> | null;
  commitTime: Date;
}

/** FeedFilter picks the changes of one resource, optionally of one user's rows. */
export interface FeedFilter {
  resource: "user" | "post";
  userId?: bigint;
}

/** Chunk is one read of the feed: changes after a position, and where the next read continues. */
export interface Chunk {
  changes: ChangeRow[];
  next: FeedPosition;
  /** more: the read stopped at its limits, so more changes may follow at once. */
  more: boolean;
}

/**
 * FeedPositionExpired: the position is older than what retention keeps, so
 * changes after it may be gone. The watcher must list again.
 */
export class FeedPositionExpired extends Error {
  override name = "FeedPositionExpired";
  constructor(readonly prunedThrough: bigint) {
    super("the resume point is older than the change feed's retention");
  }
}

/**
 * FeedPositionAhead: the position is past the end of the feed, which no token
 * of this feed can be (a token of another database, or of a database since
 * restored from a backup or failed over to a standby that lagged). Waiting
 * for the feed to get there would skip what comes before: the watcher must
 * list again.
 */
export class FeedPositionAhead extends Error {
  override name = "FeedPositionAhead";
  constructor() {
    super("the resume point is past the end of the change feed");
  }
}

/** commitsPerRead bounds the commits one read looks at, so a filtered watch never scans without bound. */
export const commitsPerRead = 500;
/** changesPerRead bounds the changes one read returns (as exports read 500 rows a chunk). */
export const changesPerRead = 500;

interface ReadRow extends Partial<ChangeRow> {
  prunedThrough: bigint;
  head: bigint;
  windowEnd: bigint | null;
  windowCommits: bigint;
}

/** headSql is the seq of the end of the feed as a statement's snapshot sees it: after every visible commit. */
const headSql = "greatest((SELECT max(seq) FROM change_commits), (SELECT pruned_through FROM change_feed)) + 1";

/** headOn is the end of the feed as db's snapshot sees it: a position after every visible change. */
export async function headOn(db: Knex): Promise<FeedPosition> {
  const { rows } = await db.raw<{ rows: { seq: bigint }[] }>(`SELECT ${headSql} AS seq`);
  return { seq: rows[0]!.seq, id: 0n };
}

/**
 * readChanges reads the changes after a position that match the filter: one
 * statement (one snapshot) on a pooled connection that goes back before the
 * changes are handed on. It fails with FeedPositionExpired when retention has
 * pruned past the position, also when that happened while a watcher waited,
 * and with FeedPositionAhead when the position is past the end of the feed.
 */
export async function readChanges(db: Knex, after: FeedPosition, filter: FeedFilter): Promise<Chunk> {
  const byUser = filter.userId === undefined ? "" : "AND ch.user_id = ?::bigint";
  const { rows } = await db.raw<{ rows: ReadRow[] }>(
    `WITH w AS (
       SELECT seq, xid, commit_time FROM change_commits WHERE seq >= ?::bigint ORDER BY seq LIMIT ?
     ), c AS (
       SELECT w.seq, ch.id, ch.operation, ch.resource_id AS "resourceId", ch.user_id AS "userId", ch.data,
         w.commit_time AS "commitTime"
       FROM w JOIN changes AS ch ON ch.xid = w.xid
       WHERE (w.seq, ch.id) > (?::bigint, ?::bigint) AND ch.resource = ? ${byUser}
       ORDER BY w.seq, ch.id LIMIT ?
     )
     SELECT f.pruned_through AS "prunedThrough", ${headSql} AS head,
       (SELECT max(seq) FROM w) AS "windowEnd",
       (SELECT count(*) FROM w) AS "windowCommits", c.*
     FROM change_feed AS f LEFT JOIN c ON true
     ORDER BY c.seq, c.id`,
    [
      String(after.seq),
      commitsPerRead,
      String(after.seq),
      String(after.id),
      filter.resource,
      ...(filter.userId === undefined ? [] : [String(filter.userId)]),
      changesPerRead,
    ],
  );
  const first = rows[0]!;
  if (after.seq <= first.prunedThrough) throw new FeedPositionExpired(first.prunedThrough);
  if (after.seq > first.head || (after.seq === first.head && after.id > 0n)) throw new FeedPositionAhead();
  const changes = rows.filter((r) => r.seq !== null) as ChangeRow[];
  if (changes.length === changesPerRead) {
    const last = changes.at(-1)!;
    return { changes, next: { seq: last.seq, id: last.id }, more: true };
  }
  // Every matching change of the window was read: continue after its last commit.
  const next = first.windowEnd === null ? after : { seq: first.windowEnd + 1n, id: 0n };
  return { changes, next, more: first.windowCommits === BigInt(commitsPerRead) };
}

/** Listed is a listing's result and the head of the feed in the same snapshot. */
export interface Listed<T> {
  result: T;
  head: FeedPosition;
}

/**
 * listAtHead reads a listing's rows and the head of the change feed in one
 * statement, so in one snapshot: a watch from that head delivers exactly the
 * commits the listing did not see, none twice, none missed. Being one
 * statement, it needs no transaction (no BEGIN and COMMIT round trips).
 * `rows` numbers its rows in their order in an `ord` column; when it finds
 * none, the head still comes (one row of nulls beside it, dropped here). The
 * rows come back as `rows` read them, without the head's column.
 */
export async function listAtHead<Row extends { ord: unknown }>(
  db: Knex,
  rows: Knex.QueryBuilder | Knex.Raw,
): Promise<Listed<Row[]>> {
  const read = (await db
    .select("h.feed_head", "listed.*")
    .from(db.raw(`(SELECT ${headSql} AS feed_head) AS h`))
    .leftJoin(db.raw("(?) AS listed", [rows]), db.raw("true"))
    .orderBy("listed.ord")) as (Row & { feedHead: bigint })[];
  const head = { seq: read[0]!.feedHead, id: 0n };
  if (read[0]!.ord === null) return { result: [], head };
  return { result: read.map(({ feedHead: _h, ...row }) => row as unknown as Row), head };
}
