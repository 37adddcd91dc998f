import type { Knex } from "knex";
import { Batcher, WriteBatcher } from "../db/batcher.js";
import { listAtHead } from "../db/change-feed.js";
import type { Listed } from "../db/change-feed.js";
import type { IdempotencyKey, IdempotentResult } from "../db/idempotency.js";
import type { Reader } from "../db/read-routing.js";
import { epochMillis } from "../db/epoch-millis.js";
import { unnestModels } from "../db/unnest.js";
import { VersionedRepository } from "../db/versioned-repository.js";
import type { WriteResult } from "../db/write-result.js";
import { fetchPageAtHead, fetchRows, pageOf, pageStatement, rowsOf, totalSize } from "../list/page.js";
import { rowBytesSql } from "../list/row-bytes.js";
import type { Page, ReadRow, Rows, TotalCount } from "../list/page.js";
import type { PageTokens } from "../list/page-token.js";
import type { ListQuery, Position } from "../list/query.js";
import { postTexts, usersListing } from "./listing.js";
import { User, postOfJson, userBytes } from "./model.js";
import type { PostJson, UserRow } from "./model.js";

/** The user fields a caller may write. */
export interface UserFields {
  name: string;
  age: number;
}

/** One UpdateUser's change: the row, the new values, and the etag's version if one was sent. */
interface Change {
  id: bigint;
  fields: Partial<UserFields>;
  expectedVersion: bigint | undefined;
}

/** usersByIdSql reads BASIC users by an array of ids: GetUser BASIC's one statement text (see getMany). */
export const usersByIdSql = `select "id", "name", "age", "version", "create_time" as "createTime", "update_time" as "updateTime"
  from "users" where "id" = any(?::bigint[])`;

/** postsPerUserInList caps the posts each user carries in a FULL listing (documented in the API). */
export const postsPerUserInList = 100;

/**
 * UserRepository holds every query on users; the shared ones (get by id,
 * etag-checked update and delete, idempotent create) come from
 * VersionedRepository.
 */
export class UserRepository extends VersionedRepository<User> {
  constructor(db: Knex, reader?: Reader) {
    super(User, db, reader);
  }

  create(fields: UserFields): Promise<User> {
    return this.insert(fields);
  }

  /** createOnce creates the user at most once per request_id (AIP-155). */
  createOnce(fields: UserFields, key: IdempotencyKey): Promise<IdempotentResult<User>> {
    return this.insertOnce(fields, key);
  }

  /** getWithPosts returns the user with their posts oldest first (two statements). */
  async getWithPosts(id: bigint): Promise<User | undefined> {
    return this.reader.read(async (db) => User.query(db).findById(String(id)).withGraphFetched("posts(oldestFirst)"));
  }

  /**
   * find is get for concurrent callers: the finds of one event-loop turn share
   * one `WHERE id = any(...)` statement (plus one posts statement withPosts).
   * Only for reads that may come from any up-to-date database (no
   * read-your-writes position), since a batch takes one route.
   */
  find(id: bigint, options: { withPosts: boolean }): Promise<User | undefined> {
    return (options.withPosts ? this.full : this.basic).load(id);
  }

  private readonly basic = this.batcher(false);
  private readonly full = this.batcher(true);

  private batcher(withPosts: boolean): Batcher<bigint, User | undefined> {
    return new Batcher(async (ids) => {
      const users = await this.getMany(ids, { withPosts });
      return new Map(users.map((u) => [u.id, u]));
    }, undefined);
  }

  /**
   * getMany returns the users with these ids, in no particular order (two
   * statements withPosts). The ids go as one array parameter
   * (`id = any(?::bigint[])`), so the users' statement has the same text
   * however many there are (one prepared statement, not one per batch size).
   * Without posts it is every BASIC GetUser's read, so the users come from
   * one fixed knex.raw text rather than Objection's query builder, whose
   * building, hooks and result handling cost about a fifth of the service's
   * CPU per GetUser at one call in flight. With posts it stays Objection's
   * withGraphFetched, whose posts statement is `user_id IN (...)`: one text
   * per batch size. Reading the users raw and the posts with fetchGraph
   * measured slower than that.
   */
  async getMany(ids: bigint[], options: { withPosts: boolean }): Promise<User[]> {
    const idList = ids.map(String);
    return this.reader.read(async (db) =>
      options.withPosts
        ? User.query(db).whereRaw("users.id = any(?::bigint[])", [idList]).withGraphFetched("posts(oldestFirst)")
        : unnestModels<User>(db, User, usersByIdSql, [idList]),
    );
  }

  /**
   * change is update for concurrent callers: the changes of one event-loop
   * turn share one `UPDATE ... FROM unnest(...)` statement that skips rows
   * another transaction has locked (`FOR UPDATE SKIP LOCKED`), so the shared
   * statement never waits on a lock and needs no caller's deadline. A change
   * that statement did not apply (alone in its turn, a locked, missing or
   * stale row, a second change of the same user) runs as update, in the
   * caller's own context: bound by its deadline, and telling missing from
   * stale.
   */
  async change(id: bigint, fields: Partial<UserFields>, expectedVersion?: bigint): Promise<WriteResult<User>> {
    const applied = await this.changes.write({ id, fields, expectedVersion });
    return applied !== undefined ? { kind: "done", value: applied } : this.update(id, fields, expectedVersion);
  }

  private readonly changes = new WriteBatcher<Change, User | undefined>(async (batch) => {
    if (batch.length < 2) return batch.map(() => undefined);
    const first = new Map<bigint, Change>();
    for (const change of batch) if (!first.has(change.id)) first.set(change.id, change);
    const updated = new Map((await this.updateMany([...first.values()])).map((row) => [row.id, row]));
    return batch.map((change) => (first.get(change.id) === change ? updated.get(change.id) : undefined));
  });

  private updateMany(changes: Change[]): Promise<User[]> {
    return unnestModels<User>(
      this.db,
      User,
      `WITH v AS (
         SELECT * FROM unnest(?::bigint[], ?::text[], ?::int[], ?::bigint[]) AS v(id, name, age, expected)
       ), free AS MATERIALIZED (
         SELECT u.id FROM users AS u JOIN v ON u.id = v.id FOR UPDATE OF u SKIP LOCKED
       )
       UPDATE users AS u SET
         name = COALESCE(v.name, u.name),
         age = COALESCE(v.age, u.age),
         version = u.version + 1,
         update_time = now()
       FROM v
       WHERE u.id = v.id AND u.id IN (SELECT id FROM free) AND (v.expected IS NULL OR u.version = v.expected)
       RETURNING u.id, u.name, u.age, u.version, u.create_time AS "createTime", u.update_time AS "updateTime"`,
      [
        changes.map((c) => String(c.id)),
        changes.map((c) => c.fields.name ?? null),
        changes.map((c) => c.fields.age ?? null),
        changes.map((c) => (c.expectedVersion === undefined ? null : String(c.expectedVersion))),
      ],
    );
  }

  /** count is a raw SQL count (knex.raw), as CountUsers documents. */
  async count(): Promise<bigint> {
    return this.reader.read(async (db) => {
      const result = await db.raw<{ rows: { count: bigint }[] }>("SELECT COUNT(*) AS count FROM users");
      return result.rows[0]?.count ?? 0n;
    });
  }

  /**
   * list reads one keyset page; withPosts also reads every listed user's
   * first posts, capped per user with a LATERAL LIMIT, and within maxBytes:
   * the posts are read in page order while those before them take less than
   * maxBytes, and the page ends before the first user whose posts do not fit
   * (the next page starts there). A first user that alone takes more is
   * kept, for the service to refuse. The page, the posts and the head of the
   * change feed (the list's watch token) are one statement, so one snapshot.
   */
  list(
    query: ListQuery,
    size: number,
    withPosts: boolean,
    tokens: PageTokens,
    maxBytes: number,
  ): Promise<Listed<Page<UserRow>>> {
    return this.reader.read(async (db) => {
      const base = db("users").select("users.*");
      if (!withPosts)
        return fetchPageAtHead<UserRow & Record<string, unknown>>(db, base, usersListing, query, size, tokens);
      const page = pageStatement(base, { listing: usersListing, query, after: query.after, limit: size });
      const { result, head } = await listAtHead<ReadRow>(
        db,
        this.withPostsStatement(db, page.statement, size, maxBytes),
      );
      const { rows, more } = rowsOf<Omit<UserRow, "posts"> & { posts: PostJson[] }>(result, page);
      const users = rows.map((user) => ({ ...user, posts: user.posts.map((post) => postOfJson(user.id, post)) }));
      // The posts read stop at the first that does not fit, so every user up to
      // that one is whole, and that user and those after it wait for the next page.
      let fit = 0;
      for (let total = 0; fit < users.length; fit++) {
        total += userBytes(users[fit]!);
        if (total > maxBytes && fit > 0) break;
      }
      return { result: pageOf(users.slice(0, fit), more || fit < users.length, usersListing, query, tokens), head };
    });
  }

  /**
   * withPostsStatement adds to a page of users (a pageStatement) each user's
   * first posts as a JSON array (PostJson), in one statement. It is the
   * statement form of `withGraphFetched("posts(oldestFirst)")`, which
   * getWithPosts and getMany use: fetchGraph would take a second statement,
   * so the listing would need a transaction (BEGIN and COMMIT) to keep one
   * snapshot with its watch token, and it builds a model per row: 5 round
   * trips and about twice the CPU a call of this one statement for a page of
   * 100 users with 10 posts each (bench list-users-full).
   */
  private withPostsStatement(db: Knex, page: Knex.QueryBuilder, size: number, maxBytes: number): Knex.Raw {
    const bytes = rowBytesSql(postTexts);
    return db.raw(
      `WITH page AS MATERIALIZED (?), posted AS (
         SELECT u.ord, p.id, p.title, p.content, p.version, p.create_time, p.update_time,
           sum(p.bytes) OVER (ORDER BY u.ord, p.id) - p.bytes AS bytes_before
         FROM page AS u
         CROSS JOIN LATERAL (
           SELECT posts.*, ${bytes.sql} AS bytes FROM posts WHERE posts.user_id = u.id ORDER BY posts.id LIMIT ?
         ) AS p
         WHERE u.ord <= ?
       ), grouped AS (
         SELECT ord, json_agg(json_build_array(id::text, title, content, version::text,
           ${epochMillis("create_time")}, ${epochMillis("update_time")}) ORDER BY id) AS posts
         FROM posted WHERE bytes_before < ? GROUP BY ord
       )
       SELECT page.*, coalesce(grouped.posts, '[]') AS posts FROM page LEFT JOIN grouped USING (ord)`,
      [page, ...bytes.bindings, postsPerUserInList, size, Math.min(maxBytes, Number.MAX_SAFE_INTEGER)],
    );
  }

  /** total counts the users matching the query's filter, exactly or estimated. */
  total(query: ListQuery, count: TotalCount): Promise<bigint | undefined> {
    return this.reader.read((db) => {
      const filtered = db("users").select("users.id");
      query.apply(filtered);
      return totalSize(db, filtered, count);
    });
  }

  /** exportChunk reads up to limit matching users after a position, for exports (one statement). */
  exportChunk(query: ListQuery, after: Position | undefined, limit: number): Promise<Rows<UserRow>> {
    return this.reader.read((db) =>
      fetchRows<UserRow & Record<string, unknown>>(db("users").select("users.*"), {
        listing: usersListing,
        query,
        after,
        limit,
      }),
    );
  }
}
