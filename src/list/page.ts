import type { Knex } from "knex";
import { applyKeyset, applyOrder, keyOf } from "./query.js";
import { rowBytesSql } from "./row-bytes.js";
import type { ListQuery, Position, ResourceListing } from "./query.js";
import type { PageTokens } from "./page-token.js";

/** Page is one page of rows and the token for the next one ("" at the end). */
export interface Page<Row> {
  rows: Row[];
  nextPageToken: string;
}

/**
 * fetchPage runs one keyset page: filter, continue after the token's
 * position, order, and learn whether another page follows. One statement,
 * whatever the depth. A listing with text columns also stops once the rows
 * take maxBytes (see fetchRows): the page is then shorter than asked, as
 * AIP-158 allows, and the next one starts after its last row.
 */
export async function fetchPage<Row extends Record<string, unknown>>(
  base: Knex.QueryBuilder,
  listing: ResourceListing,
  query: ListQuery,
  size: number,
  tokens: PageTokens,
  maxBytes = Infinity,
): Promise<Page<Row>> {
  const { rows, more } = await fetchRows<Row>(base, listing, query, query.after, size, maxBytes);
  return pageOf(rows, more, listing, query, tokens);
}

/** pageOf is rows as a page: the next page token continues after the last one when more follow. */
export function pageOf<Row extends object>(
  rows: Row[],
  more: boolean,
  listing: ResourceListing,
  query: ListQuery,
  tokens: PageTokens,
): Page<Row> {
  const last = rows.at(-1);
  return {
    rows,
    nextPageToken:
      more && last !== undefined
        ? tokens.seal(query.scope, keyOf(last as Record<string, unknown>, listing, query.order))
        : "",
  };
}

/** Rows are the rows a statement read, and whether more follow them. */
export interface Rows<Row> {
  rows: Row[];
  more: boolean;
}

/**
 * fetchRows reads up to limit rows of the query after a position (keyset), in
 * the query's order, and one more to learn whether more follow: one
 * statement. When the listing names its text columns and maxBytes is finite,
 * it also stops where the rows (their strings, as rowBytesSql counts them)
 * would take more than maxBytes, keeping at least one row: a running sum in
 * the query's order, so PostgreSQL reads no more than a byte budget, one or
 * two rows past it, whatever the rows hold (posts of 100,000 characters).
 */
export async function fetchRows<Row extends Record<string, unknown>>(
  base: Knex.QueryBuilder,
  listing: ResourceListing,
  query: ListQuery,
  after: Position | undefined,
  limit: number,
  maxBytes = Infinity,
): Promise<Rows<Row>> {
  query.apply(base);
  if (after !== undefined) applyKeyset(base, query.order, after);
  applyOrder(base, query.order);
  if (listing.texts === undefined || !Number.isFinite(maxBytes)) {
    const rows = (await base.limit(limit + 1)) as Row[];
    return { rows: rows.slice(0, limit), more: rows.length > limit };
  }
  const raw = base.client.raw.bind(base.client);
  const { sql, bindings } = rowBytesSql(listing.texts);
  const size = raw(sql, bindings);
  const order = raw(
    query.order.map((t) => `?? ${t.descending ? "DESC" : "ASC"}`).join(", "),
    query.order.map((t) => t.column),
  );
  // running_bytes: this row and those before it. A row is read while the rows between the first and
  // it take less than maxBytes: every row that fits, the one that does not, and at most one more.
  base.select(
    raw("sum(?) OVER (ORDER BY ?) AS running_bytes, ? + first_value(?) OVER (ORDER BY ?) AS own_and_first_bytes", [
      size,
      order,
      size,
      size,
      order,
    ]),
  );
  const read = (await base.client
    .queryBuilder()
    .select("*")
    .from(base.limit(limit + 1).as("budgeted"))
    .whereRaw("running_bytes - own_and_first_bytes < ?", [maxBytes])
    .orderBy("running_bytes")) as (Row & { runningBytes: number | string; ownAndFirstBytes: unknown })[];
  let kept = 0;
  while (kept < Math.min(read.length, limit) && (kept === 0 || Number(read[kept]!.runningBytes) <= maxBytes)) kept++;
  const rows = read.slice(0, kept).map(({ runningBytes: _r, ownAndFirstBytes: _o, ...row }) => row as unknown as Row);
  return { rows, more: read.length > kept };
}

/** TotalCount is how a listing's total is counted: exactly, as the planner's estimate, or not at all. */
export type TotalCount = "exact" | "estimated" | "none";

/**
 * totalSize counts the rows matching the filter with knex.raw: exactly
 * (COUNT(*)), or as PostgreSQL's planner estimate (EXPLAIN), which costs the
 * same for a million rows as for ten.
 */
export async function totalSize(db: Knex, filtered: Knex.QueryBuilder, count: TotalCount): Promise<bigint | undefined> {
  if (count === "exact") {
    const { rows } = await db.raw<{ rows: { count: bigint }[] }>("SELECT COUNT(*) AS count FROM (?) AS matching", [
      filtered,
    ]);
    return rows[0]?.count ?? 0n;
  }
  if (count === "estimated") {
    const { rows } = await db.raw<{ rows: { "QUERY PLAN": { Plan: { "Plan Rows": number } }[] }[] }>(
      "EXPLAIN (FORMAT JSON) (?)",
      [filtered],
    );
    return BigInt(Math.round(rows[0]?.["QUERY PLAN"][0]?.Plan["Plan Rows"] ?? 0));
  }
  return undefined;
}
