import type { Knex } from "knex";
import { listAtHead } from "../db/change-feed.js";
import type { Listed } from "../db/change-feed.js";
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
 * fetchPageAtHead runs one keyset page (as fetchRows reads it) together with
 * the head of the change feed, in one statement: the page and its
 * watch_token see the same snapshot. A listing with text columns stops once
 * the rows take maxBytes: the page is then shorter than asked, as AIP-158
 * allows, and the next one starts after its last row.
 */
export async function fetchPageAtHead<Row extends Record<string, unknown>>(
  db: Knex,
  base: Knex.QueryBuilder,
  listing: ResourceListing,
  query: ListQuery,
  size: number,
  tokens: PageTokens,
  maxBytes = Infinity,
): Promise<Listed<Page<Row>>> {
  const page = pageStatement(base, { listing, query, after: query.after, limit: size, maxBytes });
  const { result, head } = await listAtHead<ReadRow>(db, page.statement);
  const { rows, more } = rowsOf<Row>(result, page);
  return { result: pageOf(rows, more, listing, query, tokens), head };
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

/** PageRequest is what a page statement reads. */
export interface PageRequest {
  listing: ResourceListing;
  query: ListQuery;
  /** after is where the page starts (undefined: at the start of the query's order). */
  after: Position | undefined;
  /** limit is the most rows the page takes. */
  limit: number;
  /** maxBytes bounds what the rows' strings take; it applies only to a listing that names its texts. */
  maxBytes?: number;
}

/**
 * fetchRows runs a pageStatement and keeps the rows of the page (rowsOf): up
 * to limit rows of the query after a position, in the query's order, and
 * whether more follow. One statement.
 */
export async function fetchRows<Row extends Record<string, unknown>>(
  base: Knex.QueryBuilder,
  request: PageRequest,
): Promise<Rows<Row>> {
  const page = pageStatement(base, request);
  return rowsOf<Row>(await page.statement, page);
}

/** ReadRow is a row as pageStatement reads it: the row's columns and those it adds. */
export type ReadRow = Record<string, unknown> & {
  ord: unknown;
  runningBytes?: number | string;
  ownAndFirstBytes?: unknown;
};

/**
 * PageStatement is a page's statement and what rowsOf needs to keep its
 * rows: the limit, and the byte budget the statement reads within
 * (undefined when none applies), decided once by pageStatement.
 */
export interface PageStatement {
  statement: Knex.QueryBuilder;
  limit: number;
  budget: number | undefined;
}

/**
 * pageStatement is the statement of fetchRows: up to limit + 1 rows of the
 * query after a position, in the query's order, each numbered in that order
 * (`ord`). When the listing names its text columns and maxBytes is finite,
 * it also stops where the rows (their strings, as rowBytesSql counts them)
 * would take more than maxBytes: a running sum in the query's order, so
 * PostgreSQL reads no more than a byte budget, one or two rows past it,
 * whatever the rows hold (posts of 100,000 characters).
 */
export function pageStatement(
  base: Knex.QueryBuilder,
  { listing, query, after, limit, maxBytes = Infinity }: PageRequest,
): PageStatement {
  query.apply(base);
  if (after !== undefined) applyKeyset(base, query.order, after);
  applyOrder(base, query.order);
  const raw = base.client.raw.bind(base.client);
  const order = raw(
    query.order.map((t) => `?? ${t.descending ? "DESC" : "ASC"}`).join(", "),
    query.order.map((t) => t.column),
  );
  base.select(raw("row_number() OVER (ORDER BY ?) AS ord", [order]));
  if (listing.texts === undefined || !Number.isFinite(maxBytes)) {
    return { statement: base.limit(limit + 1), limit, budget: undefined };
  }
  const { sql, bindings } = rowBytesSql(listing.texts);
  const size = raw(sql, bindings);
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
  const statement = base.client
    .queryBuilder()
    .select("*")
    .from(base.limit(limit + 1).as("budgeted"))
    .whereRaw("running_bytes - own_and_first_bytes < ?", [maxBytes])
    .orderBy("ord");
  return { statement, limit, budget: maxBytes };
}

/**
 * rowsOf keeps the rows of a page statement that make the page: at most its
 * limit, and within its budget if it has one (at least one row), without the
 * columns the statement added; more says whether rows follow them.
 */
export function rowsOf<Row>(read: ReadRow[], { limit, budget }: Omit<PageStatement, "statement">): Rows<Row> {
  const most = Math.min(read.length, limit);
  let kept = most;
  if (budget !== undefined) {
    kept = 0;
    while (kept < most && (kept === 0 || Number(read[kept]!.runningBytes) <= budget)) kept++;
  }
  const rows = read
    .slice(0, kept)
    .map(({ ord: _o, runningBytes: _r, ownAndFirstBytes: _b, ...row }) => row as unknown as Row);
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
