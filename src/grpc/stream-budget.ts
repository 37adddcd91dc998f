/** maxRowsPerMessage caps the rows of one streamed message (ExportUsers, ExportPosts). */
export const maxRowsPerMessage = 500;

/**
 * maxBytesPerMessage caps the estimated encoded size of one streamed message:
 * well inside the default 4 MiB send limit (GRPC_MAX_SEND_MESSAGE_BYTES) and
 * every client's receive limit, whatever the rows hold.
 */
export const maxBytesPerMessage = 1024 * 1024;

/** The protobuf framing a row costs beyond its strings (tags, lengths, ids, times), rounded up. */
const rowOverhead = 64;

/** utf8Bytes is what the strings of a row cost on the wire, exactly. */
export function utf8Bytes(...texts: string[]): number {
  let bytes = rowOverhead;
  for (const text of texts) bytes += Buffer.byteLength(text, "utf8");
  return bytes;
}

/**
 * messageBatches splits rows into stream messages of at most
 * maxRowsPerMessage rows and maxBytesPerMessage bytes (as sizeOf estimates
 * them from above); a row larger than the byte cap alone still goes, alone.
 */
export function* messageBatches<T>(rows: readonly T[], sizeOf: (row: T) => number): Generator<T[]> {
  let batch: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = sizeOf(row);
    if (batch.length > 0 && (batch.length === maxRowsPerMessage || bytes + size > maxBytesPerMessage)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(row);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}
