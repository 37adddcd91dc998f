import type { Knex } from "knex";
import { applyKeyset, applyOrder, keyOf } from "./query.js";
import type { ListQuery, Position, ResourceListing } from "./query.js";
import type { PageTokens } from "./page-token.js";

/** Page is one page of rows and the token for the next one ("" at the end). */
export interface Page<Row> {
  rows: Row[];
  nextPageToken: string;
}

/**
 * fetchPage runs one keyset page: filter, continue after the token's
 * position, order, and read one row more than asked to learn whether another
 * page follows. One statement, whatever the depth.
 */
export async function fetchPage<Row extends Record<string, unknown>>(
  base: Knex.QueryBuilder,
  listing: ResourceListing,
  query: ListQuery,
  size: number,
  tokens: PageTokens,
): Promise<Page<Row>> {
  const rows = await fetchRows<Row>(base, query, query.after, size + 1);
  const more = rows.length > size;
  const page = more ? rows.slice(0, size) : rows;
  const last = page.at(-1);
  return {
    rows: page,
    nextPageToken: more && last !== undefined ? tokens.seal(query.scope, keyOf(last, listing, query.order)) : "",
  };
}

/** fetchRows reads up to limit rows of the query after a position (keyset), in the query's order: one statement. */
export async function fetchRows<Row>(
  base: Knex.QueryBuilder,
  query: ListQuery,
  after: Position | undefined,
  limit: number,
): Promise<Row[]> {
  query.apply(base);
  if (after !== undefined) applyKeyset(base, query.order, after);
  applyOrder(base, query.order);
  return (await base.limit(limit)) as Row[];
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
