import type { Knex } from "knex";
import type { Model, ModelClass } from "objection";

/**
 * unnestRows runs one statement that takes its rows as array parameters
 * (`unnest(?::bigint[], ?::text[], ...)`, `id = any(?::bigint[])`: a fixed
 * number of parameters however many rows) and returns the rows it reads, as
 * pg reads them, without Objection's query builder. The
 * statement aliases its columns to camelCase names, since Knex's identifier
 * mappers do not rewrite knex.raw rows.
 */
export async function unnestRows<Row>(db: Knex, sql: string, columns: readonly (readonly unknown[])[]): Promise<Row[]> {
  // Knex's binding type has no arrays holding nulls; pg sends any array as an array literal.
  const { rows } = await db.raw<{ rows: Row[] }>(sql, columns as unknown as Knex.RawBinding);
  return rows;
}

/** unnestModels is unnestRows with the rows read as models of `model`. */
export async function unnestModels<M extends Model>(
  db: Knex,
  model: ModelClass<M>,
  sql: string,
  columns: readonly (readonly unknown[])[],
): Promise<M[]> {
  const rows = await unnestRows<Record<string, unknown>>(db, sql, columns);
  // Objection's static fromJson is typed by `this`, which a ModelClass<M> parameter does not carry.
  return rows.map((row) => model.fromJson(row, { skipValidation: true }) as M);
}
