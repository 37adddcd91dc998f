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
  /** signal aborts when the caller cancels, the deadline passes or the server ends the call. */
  readonly signal: AbortSignal;
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

const never = new AbortController().signal;

/**
 * unbound runs work whose statements serve several calls at once (a batch):
 * no single caller's deadline or cancel may end them. Statements still count
 * for the call that started the batch.
 */
export function unbound<T>(work: () => T): T {
  const scope = storage.getStore();
  if (scope === undefined) return work();
  return storage.run({ ...scope, deadline: undefined, signal: never }, work);
}
