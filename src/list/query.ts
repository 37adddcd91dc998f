import type { Knex } from "knex";
import { applyFilter, parseFilter, sqlValue } from "./filter.js";
import type { FieldSpec } from "./filter.js";
import { canonicalOrderBy, parseOrderBy } from "./order-by.js";
import type { OrderTerm } from "./order-by.js";
import type { PageTokens } from "./page-token.js";

/** ListField is a filterable field; `property` is its camelCase name on rows. */
export interface ListField extends FieldSpec {
  property: string;
}

/** ResourceListing says how one resource may be filtered and ordered. */
export interface ResourceListing {
  resource: string;
  fields: Record<string, ListField>;
  orderable: string[];
  /**
   * texts are the columns of a row's strings, when a row can be large enough
   * that pages and export chunks must be read within a byte budget.
   */
  texts?: readonly string[];
}

/** Position is where a row stands in an order: one value per order term, as SQL compares them. */
export type Position = (string | Date)[];

/** ListQuery is a parsed, validated request: where to start, how to filter and order. */
export interface ListQuery {
  apply(query: Knex.QueryBuilder): void;
  order: OrderTerm[];
  after: Position | undefined;
  scope: string;
}

/** The page size rules of AIP-158 as the API documents them: 0 means 50, at most 1000. */
export function pageSize(requested: number): number {
  return requested === 0 ? 50 : Math.min(requested, 1000);
}

/**
 * parseListQuery validates filter, order_by and page_token together, binding
 * the token to the exact query (resource, parent, filter, order).
 */
export function parseListQuery(
  listing: ResourceListing,
  request: { filter: string; orderBy: string; pageToken?: string; parent?: string },
  tokens?: PageTokens,
): ListQuery {
  const filter = parseFilter(request.filter, listing.fields);
  const columns = Object.fromEntries(listing.orderable.map((f) => [f, listing.fields[f]!.column]));
  const order = parseOrderBy(request.orderBy, columns, listing.fields.id!.column);
  const scope = JSON.stringify([
    listing.resource,
    request.parent ?? "",
    request.filter.trim(),
    canonicalOrderBy(order),
  ]);
  const token = request.pageToken ?? "";
  const after =
    token === "" || tokens === undefined
      ? undefined
      : tokens.open(token, scope).map((value, i) => {
          const field = listing.fields[order[i]!.field]!;
          return field.type === "timestamp" ? new Date(value) : value;
        });
  return {
    scope,
    order,
    after,
    apply: (query) => {
      if (filter !== undefined) query.where((q) => applyFilter(q, filter));
    },
  };
}

/**
 * applyKeyset continues after the last row of the previous page: a row
 * comparison when every term goes the same way (served by the (column, id)
 * indexes), else the expanded OR form.
 */
export function applyKeyset(query: Knex.QueryBuilder, order: OrderTerm[], after: (string | Date)[]): void {
  const sameWay = order.every((t) => t.descending === order[0]!.descending);
  if (sameWay) {
    const columns = order.map(() => "??").join(", ");
    const values = order.map(() => "?").join(", ");
    const op = order[0]!.descending ? "<" : ">";
    query.whereRaw(`(${columns}) ${op} (${values})`, [...order.map((t) => t.column), ...after]);
    return;
  }
  query.where((outer) => {
    order.forEach((term, i) => {
      outer.orWhere((q) => {
        for (let j = 0; j < i; j++) q.where(order[j]!.column, after[j]!);
        q.where(term.column, term.descending ? "<" : ">", after[i]!);
      });
    });
  });
}

/** applyOrder sorts by the terms, id last. */
export function applyOrder(query: Knex.QueryBuilder, order: OrderTerm[]): void {
  for (const term of order) query.orderBy(term.column, term.descending ? "desc" : "asc");
}

/** positionOf is where a row stands in the order, to continue after it (exports). */
export function positionOf(row: Record<string, unknown>, listing: ResourceListing, order: OrderTerm[]): Position {
  return order.map((term) => sqlValue(row[listing.fields[term.field]!.property] as bigint | string | Date));
}

/** keyOf is the position of a row in the order, as stored in a page token. */
export function keyOf(row: Record<string, unknown>, listing: ResourceListing, order: OrderTerm[]): string[] {
  return positionOf(row, listing, order).map((value) => (value instanceof Date ? value.toISOString() : value));
}
