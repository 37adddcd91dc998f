import { Readable } from "node:stream";

/** exportBatchSize is how many rows one streamed message carries. */
export const exportBatchSize = 500;

/**
 * exportBatches groups cursor rows into messages. It pulls from the cursor
 * only as fast as the consumer takes batches, so a slow reader holds the
 * database cursor back instead of buffering the table; an aborted call
 * closes the cursor.
 */
export async function* exportBatches<Row>(rows: AsyncIterable<Row>, signal: AbortSignal): AsyncGenerator<Row[]> {
  if (rows instanceof Readable) return yield* readableBatches<Row>(rows, signal);
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

/**
 * readableBatches is exportBatches for a Knex cursor stream: it takes the rows
 * the stream has buffered synchronously (`read()`), so a batch of 500 rows
 * costs one wait instead of the promise per row of `for await` (a million
 * rows were a million promises, each also paying the async-context hooks).
 * Leaving early (the call ended, the consumer stopped) destroys the stream,
 * which closes the cursor and returns its connection.
 */
async function* readableBatches<Row>(rows: Readable, signal: AbortSignal): AsyncGenerator<Row[]> {
  let batch: Row[] = [];
  try {
    for (;;) {
      if (signal.aborted) return;
      let row: Row | null;
      while ((row = rows.read() as Row | null) !== null) {
        batch.push(row);
        if (batch.length === exportBatchSize) {
          yield batch;
          batch = [];
          if (signal.aborted) return;
        }
      }
      if (rows.errored) throw rows.errored;
      if (rows.readableEnded || rows.destroyed) break;
      await more(rows);
    }
    if (batch.length > 0) yield batch;
  } finally {
    rows.destroy();
  }
}

/** more waits until the stream has rows to read, has ended, or fails. */
function more(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      stream.off("readable", done).off("end", done).off("close", done).off("error", fail);
      resolve();
    };
    const fail = (error: unknown) => {
      done();
      reject(error);
    };
    stream.on("readable", done).on("end", done).on("close", done).on("error", fail);
  });
}
