import type { Knex } from "knex";
import type { TotalSizeMode } from "../../gen/blog/v1/list_pb.js";
import { Batcher, WriteBatcher } from "../db/batcher.js";
import { idempotentCreate } from "../db/idempotency.js";
import { primaryReader } from "../db/read-routing.js";
import { unnestModels } from "../db/unnest.js";
import type { Reader } from "../db/read-routing.js";
import type { IdempotencyKey, IdempotentResult } from "../db/idempotency.js";
import type { WriteResult } from "../db/write-result.js";
import { fetchPage, totalSize } from "../list/page.js";
import type { Page } from "../list/page.js";
import type { PageTokens } from "../list/page-token.js";
import { applyOrder } from "../list/query.js";
import type { ListQuery } from "../list/query.js";
import { postsListing } from "./listing.js";
import { Post } from "./model.js";
import type { PostRow } from "./model.js";

/** The post fields a caller may write. */
export interface PostFields {
  title: string;
  content: string;
}

/** NewPost is one row to insert. */
type NewPost = PostFields & { userId: bigint };

/**
 * PostRepository holds every query on posts; each method takes an optional
 * transaction. Writes go to db (the primary); reads go through reader, which
 * may pick a read replica. Every query that has a user id filters on
 * posts.user_id, the column posts are distributed by on Citus.
 */
export class PostRepository {
  constructor(
    private readonly db: Knex,
    private readonly reader: Reader = primaryReader(db),
  ) {}

  /** create inserts a post; a missing user surfaces as a foreign key violation. */
  async create(userId: bigint, fields: PostFields, trx?: Knex.Transaction): Promise<Post> {
    return Post.query(trx ?? this.db)
      .insert({ userId, ...fields })
      .returning("*");
  }

  /** createOnce creates the post at most once per request_id (AIP-155). */
  createOnce(userId: bigint, fields: PostFields, key: IdempotencyKey): Promise<IdempotentResult<Post>> {
    return idempotentCreate(
      this.db,
      key,
      (trx) => this.create(userId, fields, trx),
      (id, trx) => this.get(id, trx),
    );
  }

  /** createMany inserts every post in one INSERT, in order: all or nothing. */
  createMany(userId: bigint, posts: PostFields[]): Promise<Post[]> {
    return this.insertMany(posts.map((fields) => ({ userId, ...fields })));
  }

  /**
   * add is create for concurrent callers: the adds of one event-loop turn go
   * in one INSERT; if it fails (say, one user is missing), it is split until
   * every caller has its own answer.
   */
  add(userId: bigint, fields: PostFields): Promise<Post> {
    return this.adds.write({ userId, ...fields });
  }

  private readonly adds = new WriteBatcher<NewPost, Post>((rows) => this.insertMany(rows));

  /**
   * insertMany is one `INSERT ... SELECT FROM unnest(...)` with three array
   * parameters however many rows there are (a multi-row VALUES list would
   * bind three parameters a row: 3,000 for a batch of 1,000, each parsed and
   * planned by PostgreSQL). Rows come back in the order given.
   */
  private insertMany(rows: NewPost[]): Promise<Post[]> {
    return unnestModels<Post>(
      this.db,
      Post,
      `INSERT INTO posts (user_id, title, content)
       SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[])
       RETURNING id, user_id AS "userId", title, content, version,
         create_time AS "createTime", update_time AS "updateTime"`,
      [rows.map((r) => String(r.userId)), rows.map((r) => r.title), rows.map((r) => r.content)],
    );
  }

  /** find is get for concurrent callers: one turn's finds share one `WHERE id IN (...)` statement. */
  find(id: bigint): Promise<Post | undefined> {
    return this.batch.load(id);
  }

  private readonly batch = new Batcher<bigint, Post | undefined>(async (ids) => {
    const posts = await this.reader.read(async (db) => Post.query(db).whereIn("posts.id", ids.map(String)));
    return new Map(posts.map((p) => [p.id, p]));
  }, undefined);

  async get(id: bigint, trx?: Knex.Transaction): Promise<Post | undefined> {
    const get = async (db: Knex) => Post.query(db).findById(String(id));
    return trx === undefined ? this.reader.read(get) : get(trx);
  }

  /** update changes the fields, bumps the version (etag) and update_time in one statement. */
  async update(id: bigint, fields: Partial<PostFields>, expectedVersion?: bigint): Promise<WriteResult<Post>> {
    const query = Post.query(this.db)
      .patch({ ...fields, version: this.db.raw("version + 1"), updateTime: this.db.fn.now() } as never)
      .where("id", String(id));
    if (expectedVersion !== undefined) query.where("version", String(expectedVersion));
    const [post] = (await query.returning("*")) as unknown as Post[];
    if (post !== undefined) return { kind: "done", value: post };
    return (await this.exists(id)) ? { kind: "stale" } : { kind: "missing" };
  }

  async delete(id: bigint, expectedVersion?: bigint): Promise<WriteResult<true>> {
    const query = Post.query(this.db).delete().where("id", String(id));
    if (expectedVersion !== undefined) query.where("version", String(expectedVersion));
    if ((await query) > 0) return { kind: "done", value: true };
    return expectedVersion !== undefined && (await this.exists(id)) ? { kind: "stale" } : { kind: "missing" };
  }

  /** exists asks the primary: a write decides between stale and missing on what it just saw. */
  private async exists(id: bigint): Promise<boolean> {
    return (await Post.query(this.db).findById(String(id)).select("id")) !== undefined;
  }

  private base(db: Knex, userId: bigint): Knex.QueryBuilder {
    const query = db("posts").select("posts.*");
    if (userId !== 0n) query.where("posts.user_id", String(userId));
    return query;
  }

  /** list reads one keyset page of posts, of one user when userId is not 0. */
  async list(userId: bigint, query: ListQuery, size: number, tokens: PageTokens): Promise<Page<PostRow>> {
    return this.reader.read((db) =>
      fetchPage<PostRow & Record<string, unknown>>(this.base(db, userId), postsListing, query, size, tokens),
    );
  }

  total(userId: bigint, query: ListQuery, mode: TotalSizeMode): Promise<bigint | undefined> {
    return this.reader.read((db) => {
      const filtered = this.base(db, userId).clearSelect().select("posts.id");
      query.apply(filtered);
      return totalSize(db, filtered, mode);
    });
  }

  /** stream reads every matching post from a server-side cursor, honouring backpressure. */
  stream(userId: bigint, query: ListQuery): AsyncIterable<PostRow> {
    return this.reader.stream((db) => {
      const base = this.base(db, userId);
      query.apply(base);
      applyOrder(base, query.order);
      return base.stream({ batchSize: 500 }) as AsyncIterable<PostRow>;
    });
  }
}
