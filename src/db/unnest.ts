import type { Knex } from "knex";
import type { Model, ModelClass } from "objection";

/**
 * unnestModels runs one statement that takes its rows as array parameters
 * (`unnest(?::bigint[], ?::text[], ...)`, `id = any(?::bigint[])`: a fixed
 * number of parameters however many rows) and reads the rows it returns as
 * models of `model`, without Objection's query builder. The
 * statement aliases its columns to the models' camelCase names, since Knex's
 * identifier mappers do not rewrite knex.raw rows.
 */
export async function unnestModels<M extends Model>(
  db: Knex,
  model: ModelClass<M>,
  sql: string,
  columns: readonly (readonly unknown[])[],
): Promise<M[]> {
  // Knex's binding type has no arrays holding nulls; pg sends any array as an array literal.
  const { rows } = await db.raw<{ rows: Record<string, unknown>[] }>(sql, columns as unknown as Knex.RawBinding);
  // Objection's static fromJson is typed by `this`, which a ModelClass<M> parameter does not carry.
  return rows.map((row) => model.fromJson(row, { skipValidation: true }) as M);
}
