import type { Knex } from "knex";
import type { Model, ModelClass, PartialModelObject } from "objection";
import { idempotentCreate } from "./idempotency.js";
import type { IdempotencyKey, IdempotentResult } from "./idempotency.js";
import { primaryReader } from "./read-routing.js";
import type { Reader } from "./read-routing.js";
import type { WriteResult } from "./write-result.js";

/** VersionedRow is what every resource of this service is: an id and a version that is its etag. */
export interface VersionedRow extends Model {
  id: bigint;
  version: bigint;
}

/**
 * VersionedRepository holds the queries every resource shares: read by id,
 * insert, create at most once per request_id, and the etag-checked update
 * and delete. A resource's repository extends it with its own queries.
 * Writes go to db (the primary); reads go through reader, which may pick a
 * read replica for calls that allow it.
 */
export class VersionedRepository<M extends VersionedRow> {
  constructor(
    private readonly model: ModelClass<M>,
    protected readonly db: Knex,
    protected readonly reader: Reader = primaryReader(db),
  ) {}

  /** get reads one row by id; in a transaction, on it. */
  async get(id: bigint, trx?: Knex.Transaction): Promise<M | undefined> {
    const get = async (db: Knex) => (await this.model.query(db).findById(String(id))) as M | undefined;
    return trx === undefined ? this.reader.read(get) : get(trx);
  }

  /** insert adds one row and returns it as stored. */
  protected async insert(row: PartialModelObject<M>, trx?: Knex.Transaction): Promise<M> {
    return (await this.model
      .query(trx ?? this.db)
      .insert(row)
      .returning("*")) as unknown as M;
  }

  /** insertOnce inserts the row at most once per request_id (AIP-155); a retry replays the first row. */
  protected insertOnce(row: PartialModelObject<M>, key: IdempotencyKey): Promise<IdempotentResult<M>> {
    return idempotentCreate(
      this.db,
      key,
      (trx) => this.insert(row, trx),
      (created) => [created.id],
      ([id], trx) => this.get(id!, trx),
    );
  }

  /**
   * update changes the given fields, bumps the version (the etag) and
   * update_time in one statement; with an expected version it only applies
   * to that version.
   */
  async update(id: bigint, fields: PartialModelObject<M>, expectedVersion?: bigint): Promise<WriteResult<M>> {
    const query = this.model
      .query(this.db)
      .patch({ ...fields, version: this.db.raw("version + 1"), updateTime: this.db.fn.now() } as never)
      .where("id", String(id));
    if (expectedVersion !== undefined) query.where("version", String(expectedVersion));
    const [row] = (await query.returning("*")) as unknown as M[];
    if (row !== undefined) return { kind: "done", value: row };
    return (await this.exists(id)) ? { kind: "stale" } : { kind: "missing" };
  }

  /** delete removes the row (and, by ON DELETE CASCADE, what depends on it) in one statement. */
  async delete(id: bigint, expectedVersion?: bigint): Promise<WriteResult<true>> {
    const query = this.model.query(this.db).delete().where("id", String(id));
    if (expectedVersion !== undefined) query.where("version", String(expectedVersion));
    if ((await query) > 0) return { kind: "done", value: true };
    return expectedVersion !== undefined && (await this.exists(id)) ? { kind: "stale" } : { kind: "missing" };
  }

  /** exists asks the primary: a write decides between stale and missing on what it just saw. */
  private async exists(id: bigint): Promise<boolean> {
    return (await this.model.query(this.db).findById(String(id)).select("id")) !== undefined;
  }
}
