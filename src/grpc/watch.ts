import { status } from "@grpc/grpc-js";
import type { Knex } from "knex";
import { ChangeType } from "../../gen/blog/v1/change_pb.js";
import { headOn, readChanges } from "../db/change-feed.js";
import type { ChangeRow, Chunk, FeedFilter } from "../db/change-feed.js";
import { ChangeNotifier } from "../db/change-notifier.js";
import { positionToken, tokenPosition } from "../db/change-position.js";
import type { FeedPosition } from "../db/change-position.js";
import { unbound } from "../call/scope.js";
import type { PoolShare } from "../db/pool-share.js";
import { ServiceError, errorInfo } from "./errors.js";
import { utf8Bytes } from "../list/row-bytes.js";
import { maxBytesPerMessage, messageBatches } from "./stream-budget.js";

/** WatchOptions are the change feed's timings (WATCH_HEARTBEAT_INTERVAL_MS, WATCH_POLL_INTERVAL_MS). */
export interface WatchOptions {
  heartbeatMs: number;
  pollMs: number;
  maxReplyBytes: number;
  /** share is the streams' share of the pool (STREAM_POOL_SHARE), which feed reads take turns on with export chunks. */
  share: PoolShare;
  onNotifierError?: (error: unknown) => void;
  /** listenUrl is a direct connection to the primary for LISTEN, when the pool goes through a pooler. */
  listenUrl?: string;
}

/** changeType is the API's name for what a change did. */
export function changeType(change: ChangeRow): ChangeType {
  return change.operation === "insert"
    ? ChangeType.CREATED
    : change.operation === "update"
      ? ChangeType.UPDATED
      : ChangeType.DELETED;
}

/** changeBytes bounds from above what a change takes in a message. */
function changeBytes(change: ChangeRow): number {
  return utf8Bytes(...Object.values(change.data ?? {}));
}

/** never is the signal of a read no single call may end (a shared read). */
const never = new AbortController().signal;

/** How a watch ends when its server shuts down: the client resumes with its last token. */
const shuttingDown = new ServiceError(
  status.UNAVAILABLE,
  "the server is shutting down; resume the watch with the last resume_token",
  [errorInfo("SERVER_SHUTTING_DOWN")],
);

/**
 * ChangeWatch serves WatchUsers and WatchPosts: one LISTEN connection per
 * process wakes every watcher; each watcher reads the feed in chunks on a
 * pooled connection that it gives back before it sends (as exports do), so a
 * slow or stalled watcher holds no connection and only delays itself, and
 * writers never wait on watchers.
 */
export class ChangeWatch {
  readonly notifier: ChangeNotifier;
  private readonly messageBytes: number;
  private readonly shared = new Map<string, { seen: number; chunk: Promise<Chunk> }>();
  private closed = false;
  /** live are the watches running: close() wakes each one. */
  private readonly live = new Set<AbortController>();

  constructor(
    private readonly db: Knex,
    private readonly options: WatchOptions,
  ) {
    this.notifier = new ChangeNotifier(db, options.pollMs, options.onNotifierError, options.listenUrl);
    this.messageBytes = maxBytesPerMessage(options.maxReplyBytes);
  }

  /**
   * read is one chunk of the feed. Watchers at the same position with the same
   * filter, woken by the same notification or poll (`seen`), share one read:
   * it started after every commit that wake-up announced, so it is as fresh
   * for each of them as one of their own. A shared read serves several calls,
   * so it runs unbound by any one of them (as batches do): one watcher going
   * away must not cancel the others' read. `fresh` (a watcher woken by its
   * own timer, not a wake-up) never shares, and stays bound to its call.
   * Every read takes its turn on the streams' share of the pool.
   */
  private read(
    after: FeedPosition,
    filter: FeedFilter,
    seen: number,
    fresh: boolean,
    signal: AbortSignal,
  ): Promise<Chunk> {
    const readChunk = (until: AbortSignal) => this.options.share.run(until, () => readChanges(this.db, after, filter));
    if (fresh) return readChunk(signal);
    const key = `${after.seq}.${after.id}.${filter.resource}.${filter.userId ?? ""}`;
    const hit = this.shared.get(key);
    if (hit !== undefined && hit.seen === seen) return hit.chunk;
    // Reads of older wake-ups are shared no more (those reading them keep their own reference).
    for (const [k, v] of this.shared) if (v.seen < seen) this.shared.delete(k);
    const entry = { seen, chunk: unbound(() => readChunk(never)) };
    this.shared.set(key, entry);
    entry.chunk.catch(() => this.shared.get(key) === entry && this.shared.delete(key));
    return entry.chunk;
  }

  /**
   * watch yields messages of changes after resumeToken (empty: from the end
   * of the feed), each with the resume token right after it, and a heartbeat
   * (no changes, a fresh token) first when there is nothing to send at once
   * and whenever nothing was sent for heartbeatMs. It runs until signal aborts.
   */
  async *watch<Message>(
    filter: FeedFilter,
    resumeToken: string,
    signal: AbortSignal,
    message: (changes: ChangeRow[], resumeToken: string) => Message,
  ): AsyncGenerator<Message> {
    const position = tokenPosition(resumeToken) ?? (await headOn(this.db));
    // One controller per watch, aborted by its call or by close(): no listener piles up on a shared signal.
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort);
    this.live.add(stop);
    try {
      yield* this.run(filter, position, signal, stop.signal, message);
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.live.delete(stop);
    }
  }

  private async *run<Message>(
    filter: FeedFilter,
    from: FeedPosition,
    signal: AbortSignal,
    stop: AbortSignal,
    message: (changes: ChangeRow[], resumeToken: string) => Message,
  ): AsyncGenerator<Message> {
    const { heartbeatMs } = this.options;
    let position = from;
    let lastSent: number | undefined;
    let fresh = true;
    while (!signal.aborted) {
      if (this.closed) throw shuttingDown;
      const seen = this.notifier.counter;
      const chunk = await this.read(position, filter, seen, fresh, signal);
      const batches = [...messageBatches(chunk.changes, changeBytes, this.messageBytes)];
      for (const [i, batch] of batches.entries()) {
        const last = batch.at(-1)!;
        yield message(batch, positionToken(i === batches.length - 1 ? chunk.next : last));
      }
      position = chunk.next;
      let sent = batches.length > 0;
      if (!sent && (lastSent === undefined || Date.now() - lastSent >= heartbeatMs)) {
        yield message([], positionToken(position));
        sent = true;
      }
      if (sent || lastSent === undefined) lastSent = Date.now();
      fresh = false;
      if (chunk.more) continue;
      fresh = !(await this.notifier.wait(seen, Math.max(1, lastSent + heartbeatMs - Date.now()), stop));
    }
  }

  /** close ends every watch with UNAVAILABLE (SERVER_SHUTTING_DOWN), which clients resume elsewhere, and stops listening. */
  close(): Promise<void> {
    this.closed = true;
    for (const stop of this.live) stop.abort();
    return this.notifier.close();
  }

  /** listToken is the watch token of a listing that saw the feed up to head. */
  listToken(head: FeedPosition): string {
    return positionToken(head);
  }
}
