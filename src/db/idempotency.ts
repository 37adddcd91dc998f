import type { Knex } from "knex";

/** How long a request_id is remembered: a retry within this window replays the first result. */
export const requestIdRetention = "24 hours";

/** IdempotencyKey identifies one create: the caller's request_id, the method, and a hash of the request. */
export interface IdempotencyKey {
  requestId: string;
  method: string;
  requestHash: Buffer;
}

/** The outcome of an idempotent create. */
export type IdempotentResult<T> =
  { kind: "created"; value: T } | { kind: "replayed"; value: T | undefined } | { kind: "reused" };

/**
 * idempotentCreate runs `create` at most once per request_id (AIP-155). The
 * key row is claimed with INSERT ... ON CONFLICT in the same transaction as
 * the create, so racing retries wait on the unique index for the first one to
 * commit (or roll back) and then replay its result; nothing is created twice.
 * An expired key (older than requestIdRetention) is taken over as new. The
 * key keeps the ids of what was created (`idsOf`; several for a batch), and a
 * replay fetches them again.
 */
export async function idempotentCreate<T>(
  db: Knex,
  key: IdempotencyKey,
  create: (trx: Knex.Transaction) => Promise<T>,
  idsOf: (created: T) => bigint[],
  fetch: (ids: bigint[], trx: Knex.Transaction) => Promise<T | undefined>,
): Promise<IdempotentResult<T>> {
  return db.transaction(async (trx) => {
    const claimed = await trx.raw<{ rows: unknown[] }>(
      `INSERT INTO idempotency_keys (request_id, method, request_hash) VALUES (?, ?, ?)
       ON CONFLICT (request_id) DO UPDATE
         SET method = EXCLUDED.method, request_hash = EXCLUDED.request_hash, resource_id = NULL, create_time = now()
         WHERE idempotency_keys.create_time < now() - interval '${requestIdRetention}'
       RETURNING request_id`,
      [key.requestId, key.method, key.requestHash],
    );
    if (claimed.rows.length === 1) {
      const value = await create(trx);
      const ids = idsOf(value).map(String);
      await trx("idempotency_keys")
        .update({ resourceId: ids[0], resourceIds: ids })
        .where({ requestId: key.requestId });
      return { kind: "created", value };
    }
    const existing = await trx("idempotency_keys").where({ requestId: key.requestId }).first();
    if (existing.method !== key.method || !key.requestHash.equals(existing.requestHash)) return { kind: "reused" };
    const ids = (existing.resourceIds as bigint[] | null) ?? [existing.resourceId as bigint];
    return { kind: "replayed", value: await fetch(ids.map(BigInt), trx) };
  });
}

/** pruneRequestIds forgets request_ids past the retention window; returns how many. */
export async function pruneRequestIds(db: Knex): Promise<number> {
  return db("idempotency_keys")
    .where("create_time", "<", db.raw(`now() - interval '${requestIdRetention}'`))
    .del();
}
