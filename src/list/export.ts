/** exportBatchSize is how many rows one streamed message carries. */
export const exportBatchSize = 500;

/**
 * exportBatches groups cursor rows into messages. It pulls from the cursor
 * only as fast as the consumer takes batches, so a slow reader holds the
 * database cursor back instead of buffering the table; an aborted call
 * closes the cursor.
 */
export async function* exportBatches<Row>(rows: AsyncIterable<Row>, signal: AbortSignal): AsyncGenerator<Row[]> {
  let batch: Row[] = [];
  for await (const row of rows) {
    if (signal.aborted) return;
    batch.push(row);
    if (batch.length === exportBatchSize) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
