import { status } from "@grpc/grpc-js";
import type { Pool, PoolClient, QueryResult, QueryResultRow } from "pg";

// The peer's handlers as most grpc-node examples write them: plain objects in
// the shape @grpc/proto-loader expects (snake_case, int64 as strings), one
// hand-written SQL statement per step, no ORM and no validation beyond the
// database's own constraints. The `pg` limit runs these same functions
// without gRPC.

/** Sql is the part of pg.Pool the handlers use, so a caller can count statements. */
export interface Sql {
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
  /**
   * streaming runs one streamed statement (a COPY, a cursor) on a client of
   * its own, checked out of the pool and released when run settles (discarded
   * after a failure, which may leave it mid-statement).
   */
  streaming<T>(run: (client: PoolClient) => Promise<T>): Promise<T>;
}

/**
 * countingSql wraps a pool so the harness can report SQL statements per call:
 * each query is one, and so is each streamed statement, however many
 * round trips its rows take (as the service's Knex counts a stream).
 */
export function countingSql(pool: Pool): { sql: Sql; statements: () => number } {
  let statements = 0;
  const sql: Sql = {
    query: (text, values) => {
      statements++;
      return pool.query(text, values);
    },
    streaming: async (run) => {
      statements++;
      const client = await pool.connect();
      try {
        const result = await run(client);
        client.release();
        return result;
      } catch (error) {
        client.release(error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
    },
  };
  return { sql, statements: () => statements };
}

/** PeerMethod answers one unary call from its decoded request. */
export type PeerMethod = (sql: Sql, request: any) => Promise<object>;

interface Timestamp {
  seconds: number;
  nanos: number;
}

interface UserRow {
  id: string;
  name: string;
  age: number;
  create_time: Date;
  update_time: Date;
  version: string;
}

/** PostRow is a row of posts as the peer selects it. */
export interface PostRow {
  id: string;
  user_id: string;
  title: string;
  content: string;
  create_time: Date;
  update_time: Date;
  version: string;
}

const userColumns = "id, name, age, create_time, update_time, version";
/** postColumns are the columns every post answer needs. */
export const postColumns = "id, user_id, title, content, create_time, update_time, version";

function timestamp(date: Date): Timestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** post maps a row to the proto-loader shape of blog.v1.Post. */
export function post(row: PostRow) {
  return {
    id: row.id,
    user_id: row.user_id,
    title: row.title,
    content: row.content,
    create_time: timestamp(row.create_time),
    update_time: timestamp(row.update_time),
    etag: `v${row.version}`,
  };
}

function user(row: UserRow, posts: PostRow[] = []) {
  return {
    id: row.id,
    name: row.name,
    age: row.age,
    posts: posts.map(post),
    create_time: timestamp(row.create_time),
    update_time: timestamp(row.update_time),
    etag: `v${row.version}`,
  };
}

/** PeerError is the grpc-js status object a handler passes to its callback. */
export interface PeerError {
  code: status;
  details: string;
}

const notFound = (resource: string, id: string): PeerError => ({
  code: status.NOT_FOUND,
  details: `${resource} ${id} not found`,
});

async function getUser(sql: Sql, request: { id: string; view: string }) {
  const { rows } = await sql.query<UserRow>(`SELECT ${userColumns} FROM users WHERE id = $1`, [request.id]);
  if (rows[0] === undefined) throw notFound("user", request.id);
  if (request.view !== "USER_VIEW_FULL") return { user: user(rows[0]) };
  const posts = await sql.query<PostRow>(`SELECT ${postColumns} FROM posts WHERE user_id = $1 ORDER BY id`, [
    request.id,
  ]);
  return { user: user(rows[0], posts.rows) };
}

async function updateUser(
  sql: Sql,
  request: { user: { id: string; name: string; age: number }; update_mask: { paths: string[] } | null },
) {
  const paths = request.update_mask?.paths.length ? request.update_mask.paths : ["name", "age"];
  const name = paths.includes("name") && request.user.name !== "" ? request.user.name.trim() : null;
  const age = paths.includes("age") ? request.user.age : null;
  const { rows } = await sql.query<UserRow>(
    `UPDATE users SET name = COALESCE($2, name), age = COALESCE($3, age), version = version + 1,
     update_time = now() WHERE id = $1 RETURNING ${userColumns}`,
    [request.user.id, name, age],
  );
  if (rows[0] === undefined) throw notFound("user", request.user.id);
  return { user: user(rows[0]) };
}

async function createPost(sql: Sql, request: { post: { user_id: string; title: string; content: string } }) {
  try {
    const { rows } = await sql.query<PostRow>(
      `INSERT INTO posts (user_id, title, content) VALUES ($1, $2, $3) RETURNING ${postColumns}`,
      [request.post.user_id, request.post.title.trim(), request.post.content],
    );
    return { post: post(rows[0]!) };
  } catch (error) {
    if ((error as { code?: string }).code === "23503") throw notFound("user", request.post.user_id);
    throw error;
  }
}

async function listUsers(sql: Sql, request: { filter: string; page_size: number; view: string }) {
  // A hand-written peer takes the one filter shape the scenario sends.
  const after = /^id > (\d+)$/.exec(request.filter)?.[1] ?? "0";
  const { rows } = await sql.query<UserRow>(`SELECT ${userColumns} FROM users WHERE id > $1 ORDER BY id LIMIT $2`, [
    after,
    request.page_size,
  ]);
  const posts = await sql.query<PostRow>(
    `SELECT ${postColumns} FROM posts WHERE user_id = ANY($1::bigint[]) ORDER BY user_id, id`,
    [rows.map((r) => r.id)],
  );
  const byUser = new Map<string, PostRow[]>();
  for (const p of posts.rows) byUser.set(p.user_id, [...(byUser.get(p.user_id) ?? []), p]);
  return { users: rows.map((r) => user(r, byUser.get(r.id) ?? [])), next_page_token: "" };
}

async function batchCreatePosts(
  sql: Sql,
  request: { user_id: string; requests: { post: { title: string; content: string } }[] },
) {
  try {
    const { rows } = await sql.query<PostRow>(
      `INSERT INTO posts (user_id, title, content)
       SELECT $1, title, content FROM unnest($2::text[], $3::text[]) AS t(title, content)
       RETURNING ${postColumns}`,
      [request.user_id, request.requests.map((r) => r.post.title.trim()), request.requests.map((r) => r.post.content)],
    );
    return { posts: rows.map(post) };
  } catch (error) {
    if ((error as { code?: string }).code === "23503") throw notFound("user", request.user_id);
    throw error;
  }
}

/** peerMethods maps a gRPC path to its hand-written handler. */
export const peerMethods: Record<string, PeerMethod> = {
  "/blog.v1.UserService/GetUser": getUser,
  "/blog.v1.UserService/UpdateUser": updateUser,
  "/blog.v1.PostService/CreatePost": createPost,
  "/blog.v1.UserService/ListUsers": listUsers,
  "/blog.v1.PostService/BatchCreatePosts": batchCreatePosts,
};
