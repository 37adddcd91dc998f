import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import type { Context, Span } from "@opentelemetry/api";

/** GrpcType is the go-grpc-prometheus `grpc_type` of a method. */
export type GrpcType = "unary" | "server_stream";

/**
 * CallScope is the state of one RPC that code deep below the handler needs
 * without it being passed down: the request id for logs, the statement
 * counter, and the span SQL statements hang under.
 */
export interface CallScope {
  /** service is the full service name, e.g. `blog.v1.UserService`. */
  readonly service: string;
  /** method is the method name, e.g. `GetUser`. */
  readonly method: string;
  readonly type: GrpcType;
  readonly peer: string;
  readonly requestId: string;
  /** startedAt is `process.hrtime.bigint()` when the call began. */
  readonly startedAt: bigint;
  /** sqlStatements counts the statements Knex sent on behalf of this call. */
  sqlStatements: number;
  /** messagesSent counts response messages handed to grpc-js. */
  messagesSent: number;
  /** span is the call's server span (a non-recording one when tracing is off). */
  span: Span | undefined;
  /** traceContext is the OpenTelemetry context the handler runs in. */
  traceContext: Context;
}

const storage = new AsyncLocalStorage<CallScope>();

/** newCallScope starts the state of a call. */
export function newCallScope(call: Pick<CallScope, "service" | "method" | "type" | "peer" | "requestId">): CallScope {
  return {
    ...call,
    startedAt: process.hrtime.bigint(),
    sqlStatements: 0,
    messagesSent: 0,
    span: undefined,
    traceContext: ROOT_CONTEXT,
  };
}

/** currentCall is the call the running code works for, if any. */
export function currentCall(): CallScope | undefined {
  return storage.getStore();
}

/** runInCall runs work (and everything it starts asynchronously) as part of scope's call. */
export function runInCall<T>(scope: CallScope, work: () => T): T {
  return storage.run(scope, work);
}
