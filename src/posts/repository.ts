import type { Knex } from "knex";
import { Batcher, WriteBatcher } from "../db/batcher.js";
import { MissingReference, isForeignKeyViolation } from "../db/errors.js";
import { idempotentCreate } from "../db/idempotency.js";
import type { IdempotencyKey, IdempotentResult } from "../db/idempotency.js";
import type { Reader } from "../db/read-routing.js";
import { epochMillis } from "../db/epoch-millis.js";
import { unnestModels, unnestRows } from "../db/unnest.js";
import { VersionedRepository } from "../db/versioned-repository.js";
import type { Listed } from "../db/change-feed.js";
import { fetchPageAtHead, fetchRows, totalSize } from "../list/page.js";
import type { Page, Rows, TotalCount } from "../list/page.js";
import type { PageTokens } from "../list/page-token.js";
import type { ListQuery, Position } from "../list/query.js";
import { postsListing } from "./listing.js";
import { Post, postOfMillis } from "./model.js";
import type { PostMillis, PostRow } from "./model.js";

/** The post fields a caller may write. */
export interface PostFields {
  title: string;
  content: string;
}

/** NewPost is one row to insert. */
type NewPost = PostFields & { userId: bigint };

/**
 * inInputOrder places rows that carry their 1-based input position (`ord`)
 * at that position, as `read` makes them from the row and its 0-based
 * position, and fails unless every input got exactly one row.
 */
export function inInputOrder<R extends { ord: bigint }, T>(
  rows: R[],
  count: number,
  read: (row: R, at: number) => T,
): T[] {
  const placed: T[] = new Array<T>(count);
  for (const row of rows) {
    const at = Number(row.ord) - 1;
    if (!(at >= 0 && at < count) || placed[at] !== undefined) throw new Error(`unexpected input position ${row.ord}`);
    placed[at] = read(row, at);
  }
  if (rows.length !== count) throw new Error(`${count} rows were inserted but ${rows.length} came back`);
  return placed;
}

/**
 * InsertedRow is what insertMany's statement returns of a post: its input
 * position and what PostgreSQL chose (id, version, times in epoch
 * milliseconds); title and content are the input's own.
 */
type InsertedRow = PostMillis & { ord: bigint };

/** The foreign key, not a prior SELECT, decides: no race with a concurrent DeleteUser. */
async function forExistingUser<T>(userId: bigint, write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    throw isForeignKeyViolation(error) ? new MissingReference("user", userId) : error;
  }
}

/**
 * PostRepository holds every query on posts; the shared ones (get by id,
 * etag-checked update and delete, idempotent create) come from
 * VersionedRepository. Every query that has a user id filters on
 * posts.user_id, the column posts are distributed by on Citus. A write for a
 * user that does not exist fails with MissingReference.
 */
export class PostRepository extends VersionedRepository<Post> {
  constructor(db: Knex, reader?: Reader) {
    super(Post, db, reader);
  }

  /** createOnce creates the post at most once per request_id (AIP-155). */
  createOnce(userId: bigint, fields: PostFields, key: IdempotencyKey): Promise<IdempotentResult<Post>> {
    return forExistingUser(userId, this.insertOnce({ userId, ...fields }, key));
  }

  /** createMany inserts every post in one INSERT: all or nothing. */
  createMany(userId: bigint, posts: PostFields[]): Promise<PostRow[]> {
    return forExistingUser(userId, this.insertMany(posts.map((fields) => ({ userId, ...fields }))));
  }

  /**
   * createManyOnce is createMany at most once per request_id (AIP-155): a
   * retry replays the posts the first call created, in request order, or
   * nothing (undefined) if one of them has been deleted since.
   */
  createManyOnce(userId: bigint, posts: PostFields[], key: IdempotencyKey): Promise<IdempotentResult<PostRow[]>> {
    const rows = posts.map((fields) => ({ userId, ...fields }));
    return forExistingUser(
      userId,
      idempotentCreate(
        this.db,
        key,
        (trx) => this.insertMany(rows, trx),
        (created) => created.map((p) => p.id),
        async (ids, trx) => {
          const found = new Map((await this.byIds(trx, ids)).map((p) => [p.id, p]));
          return ids.every((id) => found.has(id)) ? ids.map((id) => found.get(id)!) : undefined;
        },
      ),
    );
  }

  /**
   * add creates one post for concurrent callers: the adds of one event-loop
   * turn go in one INSERT; if it fails (say, one user is missing), it is
   * split until every caller has its own answer.
   */
  add(userId: bigint, fields: PostFields): Promise<PostRow> {
    return forExistingUser(userId, this.adds.write({ userId, ...fields }));
  }

  private readonly adds = new WriteBatcher<NewPost, PostRow>((rows) => this.insertMany(rows));

  /**
   * insertMany is one `INSERT ... SELECT FROM unnest(...)` with three array
   * parameters however many rows there are (a multi-row VALUES list would
   * bind three parameters a row: 3,000 for a batch of 1,000, each parsed and
   * planned by PostgreSQL). PostgreSQL does not promise that RETURNING comes
   * in input order (on a distributed table it does not), so each row takes
   * its id from the sequence (looked up once, not once a row) next to its
   * input position (`WITH ORDINALITY`), and the rows are put back in input
   * order by that position. Title and content are not read back: they are
   * what was sent, and echoing them made PostgreSQL send, and pg parse into
   * new strings, every byte of the batch again. The rows stay plain objects
   * (PostRow), not models: Objection's fromJson took about 0.5 ms of the
   * 1,000-post batch's CPU and nothing reads them as models; and their times
   * come as epoch milliseconds (epochMillis), which saved another
   * millisecond.
   */
  private async insertMany(rows: NewPost[], db: Knex = this.db): Promise<PostRow[]> {
    const inserted = await unnestRows<InsertedRow>(
      db,
      `WITH input AS MATERIALIZED (
         SELECT nextval(sequence.id) AS id, t.*
         FROM (SELECT pg_get_serial_sequence('posts', 'id')::regclass AS id) AS sequence,
           unnest(?::bigint[], ?::text[], ?::text[]) WITH ORDINALITY AS t(user_id, title, content, ord)
       ), inserted AS (
         INSERT INTO posts (id, user_id, title, content)
         SELECT id, user_id, title, content FROM input ORDER BY ord
         RETURNING id, user_id, version, create_time, update_time
       )
       SELECT input.ord, inserted.id, inserted.user_id AS "userId", inserted.version,
         ${epochMillis("inserted.create_time")} AS "createTime", ${epochMillis("inserted.update_time")} AS "updateTime"
       FROM inserted JOIN input USING (id)`,
      [rows.map((r) => String(r.userId)), rows.map((r) => r.title), rows.map((r) => r.content)],
    );
    return inInputOrder(inserted, rows.length, (row, at) => postOfMillis(row, rows[at]!));
  }

  /**
   * find is get for concurrent callers: one turn's finds share one
   * `WHERE id = any(...)` statement, whose one array parameter keeps its
   * text the same whatever the batch size.
   */
  find(id: bigint): Promise<Post | undefined> {
    return this.batch.load(id);
  }

  private readonly batch = new Batcher<bigint, Post | undefined>(async (ids) => {
    const posts = await this.reader.read((db) => this.byIds(db, ids));
    return new Map(posts.map((p) => [p.id, p]));
  }, undefined);

  /**
   * byIds reads the posts with these ids, in no particular order, with one
   * fixed knex.raw text (`id = any(?::bigint[])`) whatever their number,
   * rather than Objection's query builder: this is every GetPost's read, and
   * the builder costs more CPU than the statement.
   */
  private byIds(db: Knex, ids: bigint[]): Promise<Post[]> {
    return unnestModels<Post>(
      db,
      Post,
      `select "id", "user_id" as "userId", "title", "content", "version", "create_time" as "createTime",
         "update_time" as "updateTime"
       from "posts" where "id" = any(?::bigint[])`,
      [ids.map(String)],
    );
  }

  private base(db: Knex, userId: bigint): Knex.QueryBuilder {
    const query = db("posts").select("posts.*");
    if (userId !== 0n) query.where("posts.user_id", String(userId));
    return query;
  }

  /**
   * list reads one keyset page of posts, of one user when userId is not 0,
   * that takes at most about maxBytes, in one statement with the head of the
   * change feed (the list's watch token).
   */
  async list(
    userId: bigint,
    query: ListQuery,
    size: number,
    tokens: PageTokens,
    maxBytes: number,
  ): Promise<Listed<Page<PostRow>>> {
    return this.reader.read((db) =>
      fetchPageAtHead<PostRow & Record<string, unknown>>(
        db,
        this.base(db, userId),
        postsListing,
        query,
        size,
        tokens,
        maxBytes,
      ),
    );
  }

  total(userId: bigint, query: ListQuery, count: TotalCount): Promise<bigint | undefined> {
    return this.reader.read((db) => {
      const filtered = this.base(db, userId).clearSelect().select("posts.id");
      query.apply(filtered);
      return totalSize(db, filtered, count);
    });
  }

  /** exportChunk reads up to limit matching posts (and up to about maxBytes) after a position, for exports (one statement). */
  exportChunk(
    userId: bigint,
    query: ListQuery,
    after: Position | undefined,
    limit: number,
    maxBytes: number,
  ): Promise<Rows<PostRow>> {
    return this.reader.read((db) =>
      fetchRows<PostRow & Record<string, unknown>>(this.base(db, userId), {
        listing: postsListing,
        query,
        after,
        limit,
        maxBytes,
      }),
    );
  }
}
