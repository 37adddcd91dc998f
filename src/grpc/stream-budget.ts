import { status } from "@grpc/grpc-js";
import type { PoolShare } from "../db/pool-share.js";
import { ServiceError, errorInfo } from "./errors.js";

/** ServiceLimits are the budgets the API services' handlers work within. */
export interface ServiceLimits {
  /** maxReplyBytes is the server's send limit (GRPC_MAX_SEND_MESSAGE_BYTES); Infinity: none. */
  maxReplyBytes: number;
  /** streamShare is the share of the pool that the statements of server streams may hold at once. */
  streamShare: PoolShare;
}

/** maxRowsPerMessage caps the rows of one streamed message (ExportUsers, ExportPosts). */
export const maxRowsPerMessage = 500;

/**
 * maxBytesPerMessage caps the estimated encoded size of one streamed message:
 * 1 MiB, or half the send limit (GRPC_MAX_SEND_MESSAGE_BYTES) when that is
 * smaller, so inside the send limit and every client's receive limit,
 * whatever the rows hold.
 */
export function maxBytesPerMessage(maxReplyBytes: number): number {
  return Math.min(1024 * 1024, Math.floor(maxReplyBytes / 2));
}

/**
 * listPageBytes is what the rows of one ListPosts or ListUsers page may take:
 * the send limit less room for the rest of the reply (a next page token of up
 * to 4096 characters, the total size). A page is cut short there.
 */
export function listPageBytes(maxReplyBytes: number): number {
  return maxReplyBytes - 8192;
}

/**
 * messageBatches splits rows into stream messages of at most
 * maxRowsPerMessage rows and maxBytes bytes (as sizeOf estimates
 * them from above); a row larger than the byte cap alone still goes, alone.
 */
export function* messageBatches<T>(rows: readonly T[], sizeOf: (row: T) => number, maxBytes: number): Generator<T[]> {
  let batch: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = sizeOf(row);
    if (batch.length > 0 && (batch.length === maxRowsPerMessage || bytes + size > maxBytes)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(row);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

/**
 * ReplyTooLarge is the RESOURCE_EXHAUSTED (reason REPLY_TOO_LARGE) of a reply
 * refused for its size; `bytes` is what its rows were estimated to take, so
 * a budget of reply bytes can charge the reading a refused call did.
 */
export class ReplyTooLarge extends ServiceError {
  constructor(
    readonly bytes: number,
    maxBytes: number,
    advice: string,
  ) {
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    super(
      status.RESOURCE_EXHAUSTED,
      `the reply would take about ${mib(bytes)}, over the ${mib(maxBytes)} a message may carry; ${advice}`,
      [errorInfo("REPLY_TOO_LARGE", { estimatedBytes: String(bytes), maxBytes: String(maxBytes) })],
    );
  }
}

/**
 * replyWithin refuses, before it is built, a reply whose rows would take
 * more than maxBytes (the server's send limit, GRPC_MAX_SEND_MESSAGE_BYTES)
 * with ReplyTooLarge, saying what to ask for instead. One small request can
 * then not cost the memory and CPU of an oversized reply (BatchGetUsers FULL
 * with one id a thousand times).
 */
export function replyWithin(bytes: number, maxBytes: number, advice: string): void {
  if (bytes > maxBytes) throw new ReplyTooLarge(bytes, maxBytes, advice);
}
