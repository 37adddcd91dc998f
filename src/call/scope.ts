import { AsyncLocalStorage } from "node:async_hooks";
import type { Span } from "@opentelemetry/api";

/** CallType is the go-grpc-prometheus `grpc_type` of a method. */
export type CallType = "unary" | "server_stream";

/** CallCounters are what a call has done so far; shared by every view of the call (see unbound). */
export interface CallCounters {
  /** sqlStatements counts the statements sent on behalf of this call. */
  sqlStatements: number;
  /** messagesSent counts response messages handed to the transport. */
  messagesSent: number;
}

/**
 * Cancellation is how a call's end reaches the work it started: an
 * AbortController made cheap for the calls that never abort, which are
 * nearly all. Node's AbortSignal cost GetUser about 30 to 70 µs of CPU a call
 * at one call in flight (`npm run bench:floor`, the floor with and without
 * `signal`), where the hot paths only ask whether the call has aborted and
 * want one function called when it does (onAbort). A real AbortSignal, for
 * APIs that take one (timers, events.on, streams), is made on first use of
 * `signal`, so calls that never ask for one never pay for it. Listeners must
 * not throw.
 */
export class Cancellation {
  aborted = false;
  /** reason is what the call was aborted with (undefined until it aborts). */
  reason: unknown = undefined;
  private listeners: Set<() => void> | undefined;
  private controller: AbortController | undefined;

  /** signal is this cancellation as an AbortSignal, made on first use; aborted already if the call is. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** onAbort calls listener once when the call aborts (never if it already has); the function returned removes it. */
  onAbort(listener: () => void): () => void {
    if (this.aborted) return noop;
    (this.listeners ??= new Set()).add(listener);
    return () => this.listeners?.delete(listener);
  }

  /** abort ends the call's work with reason; only the first abort counts. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
    this.controller?.abort(reason);
  }
}

const noop = () => {};

/**
 * CallScope is everything about one call that code below the handler may
 * need: who called and what, when it must end, and what it has done. The
 * transport (src/grpc/adapter.ts) makes one per call and runs the call inside
 * it; the database layer reads `deadline`, `signal`, `readOnly` and `minLsn`
 * from it, observers the rest. It holds no transport types.
 */
export interface CallScope {
  /** service is the full service name, e.g. `blog.v1.UserService`. */
  readonly service: string;
  /** method is the method name, e.g. `GetUser`. */
  readonly method: string;
  readonly type: CallType;
  readonly peer: string;
  /** requestId names the call in logs (the caller's `x-request-id`, or a fresh UUID). */
  readonly requestId: string;
  /** deadline is when the call must have ended (epoch ms); undefined: no deadline. */
  readonly deadline: number | undefined;
  /** cancellation aborts when the caller cancels, the deadline passes or the server ends the call. */
  readonly cancellation: Cancellation;
  /** readOnly is true for methods without side effects: their reads may go to a replica. */
  readonly readOnly: boolean;
  /** minLsn is the WAL position the caller must see (read-your-writes); undefined: any. */
  readonly minLsn: bigint | undefined;
  /** caller is the name of the credential the call was admitted with (authentication on). */
  caller: string | undefined;
  /** startedAt is `process.hrtime.bigint()` when the call began. */
  readonly startedAt: bigint;
  readonly counters: CallCounters;
  /** span is the call's server span (a non-recording one when tracing is off). */
  span: Span | undefined;
}

const storage = new AsyncLocalStorage<CallScope>();

/** currentCall is the call the running code works for, if any. */
export function currentCall(): CallScope | undefined {
  return storage.getStore();
}

/** runInCall runs work (and everything it starts asynchronously) as part of scope's call. */
export function runInCall<T>(scope: CallScope, work: () => T): T {
  return storage.run(scope, work);
}

/** never is the cancellation of work no single call may end; nothing aborts it. */
const never = new Cancellation();

/**
 * unbound runs work whose statements serve several calls at once (a batch):
 * no single caller's deadline or cancel may end them. Statements still count
 * for the call that started the batch.
 */
export function unbound<T>(work: () => T): T {
  const scope = storage.getStore();
  if (scope === undefined) return work();
  return storage.run({ ...scope, deadline: undefined, cancellation: never }, work);
}
