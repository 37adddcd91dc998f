import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import type { Sql } from "../peer/queries.js";

// The `pg` limits that take another path than the peer's SQL: PostgreSQL's
// COPY through pg-copy-streams, on a client of their own. COPY answers with a
// row count and nothing else, so that count is what they return.

/** copyText escapes a value for COPY's text format (backslash, tab, newline, carriage return). */
const copyText = (value: string) =>
  value.replace(/[\\\t\n\r]/g, (c) => ({ "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c] ?? "\\\\");

/** copyPostsIn writes a BatchCreatePosts request's posts with COPY ... FROM STDIN, titles trimmed as the peer does. */
export async function copyPostsIn(
  sql: Sql,
  request: { user_id: string; requests: { post: { title: string; content: string } }[] },
): Promise<number> {
  const userId = copyText(request.user_id);
  const lines = request.requests.map(
    (r) => `${userId}\t${copyText(r.post.title.trim())}\t${copyText(r.post.content)}\n`,
  );
  return sql.streaming(async (client) => {
    const copy = client.query(copyFrom("COPY posts (user_id, title, content) FROM STDIN"));
    await pipeline(Readable.from([lines.join("")]), copy);
    return copy.rowCount;
  });
}

/**
 * copyPostsOut reads the posts an ExportPosts request selects (the scenario's
 * one filter shape, `id <= N`) with COPY (SELECT ...) TO STDOUT, to the end,
 * dropping the bytes.
 */
export async function copyPostsOut(sql: Sql, request: { user_id: string; filter: string }): Promise<number> {
  const max = /^id <= (\d+)$/.exec(request.filter)?.[1];
  if (max === undefined && request.filter !== "") throw new Error(`the pg limit takes no filter but id <= N`);
  return sql.streaming(async (client) => {
    // COPY takes no bind parameters: the values go in as escaped literals.
    const where = [
      ...(request.user_id !== "0" ? [`user_id = ${client.escapeLiteral(request.user_id)}`] : []),
      ...(max !== undefined ? [`id <= ${client.escapeLiteral(max)}`] : []),
    ];
    const copy = client.query(
      copyTo(
        `COPY (SELECT id, user_id, title, content, create_time, update_time, version FROM posts
         ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id) TO STDOUT`,
      ),
    );
    await pipeline(copy, new Writable({ write: (_chunk, _encoding, next) => next() }));
    return copy.rowCount;
  });
}
