import { InvalidInput } from "./invalid-input.js";

/** One ORDER BY term: a whitelisted column and its direction. */
export interface OrderTerm {
  field: string;
  column: string;
  descending: boolean;
}

function fail(description: string): never {
  throw new InvalidInput("INVALID_ORDER_BY", { field: "order_by", description });
}

/**
 * parseOrderBy reads AIP-132 order_by ("age desc, name") over a whitelist of
 * field -> column, and appends id as the tie-breaker so the order is total
 * (keyset pagination needs a unique order).
 */
export function parseOrderBy(text: string, columns: Record<string, string>, idColumn: string): OrderTerm[] {
  const terms: OrderTerm[] = [];
  const parts = text.trim() === "" ? [] : text.split(",");
  for (const part of parts) {
    const words = part.trim().split(/\s+/);
    const [field, direction, ...rest] = words;
    if (
      field === undefined ||
      field === "" ||
      rest.length > 0 ||
      (direction !== undefined && direction !== "desc" && direction !== "asc")
    ) {
      fail(`"${part.trim()}" is not "field" or "field desc"`);
    }
    const column = Object.hasOwn(columns, field) ? columns[field] : undefined; // not "constructor", ...
    if (column === undefined) fail(`cannot order by "${field}"; order by ${Object.keys(columns).join(", ")}`);
    if (terms.some((t) => t.field === field)) fail(`"${field}" appears twice`);
    terms.push({ field, column, descending: direction === "desc" });
  }
  if (!terms.some((t) => t.column === idColumn)) terms.push({ field: "id", column: idColumn, descending: false });
  return terms;
}

/** canonicalOrderBy is the normalized text a page token is bound to. */
export function canonicalOrderBy(terms: OrderTerm[]): string {
  return terms.map((t) => `${t.field}${t.descending ? " desc" : ""}`).join(",");
}
