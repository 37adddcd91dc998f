import type { PoolShare } from "../db/pool-share.js";
import type { Rows } from "./page.js";
import { positionOf } from "./query.js";
import type { ListQuery, Position, ResourceListing } from "./query.js";

/** exportChunkRows is how many rows one statement of an export reads. */
export const exportChunkRows = 500;

/** ReadChunk reads up to limit rows of the query after a position (none: from the start), and whether more follow. */
export type ReadChunk<Row> = (after: Position | undefined, limit: number) => Promise<Rows<Row>>;

/**
 * exportChunks reads a whole listing in keyset chunks: one statement per
 * chunk, continuing after the last row of the chunk before in the query's
 * order (the same keyset as page tokens). Each statement runs on a pooled
 * connection that goes back to the pool before its rows are handed on, so an
 * export never holds a connection, a cursor or a transaction while it waits
 * for a slow or stalled reader, and a database restart between chunks costs
 * the export nothing. The next chunk is read only when the consumer asks for
 * it, and only while fewer statements of streams than `share` allows run, so
 * streams never take the whole pool. Chunks are not one snapshot: a row changed during the export is seen
 * where its chunk finds it (in `id` order, exactly once).
 */
export async function* exportChunks<Row extends Record<string, unknown>>(
  listing: ResourceListing,
  query: ListQuery,
  read: ReadChunk<Row>,
  signal: AbortSignal,
  share: PoolShare,
): AsyncGenerator<Row[]> {
  let after: Position | undefined;
  for (;;) {
    if (signal.aborted) return;
    const { rows, more } = await share.run(signal, () => read(after, exportChunkRows));
    if (rows.length > 0) yield rows;
    if (!more) return;
    after = positionOf(rows.at(-1)!, listing, query.order);
  }
}
