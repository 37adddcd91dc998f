import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Metadata, status } from "@grpc/grpc-js";
import type { ServerUnaryCall, ServerWritableStream } from "@grpc/grpc-js";
import { Cancellation } from "../call/scope.js";
import type { CallScope } from "../call/scope.js";
import { requestIdKey } from "../protocol/keys.js";
import { minLsnOf } from "../protocol/lsn.js";
import { ServiceError, errorInfo } from "./errors.js";
import { requestIdOf } from "./request-id.js";

/**
 * CallContext is a handler's view of its call: the transport-neutral scope
 * (deadline, signal, request id, caller, min LSN, counters) that the
 * database layer also sees, plus what only the gRPC layer may touch.
 */
export interface CallContext extends CallScope {
  readonly descriptor: DescMethod;
  readonly metadata: Metadata;
  /** trailers go back with the status, on success and on failure (request id, commit LSN, ...). */
  readonly trailers: Metadata;
}

/** The abort reason of every call the client cancelled, built once: a DOMException per call costs measurably. */
export const cancelledByClient = new ServiceError(
  status.CANCELLED,
  "the call was cancelled by the client or its deadline",
);

/** A server-streaming call's end once it has run for the server's maximum stream lifetime. */
function lifetimeExceeded(maxMs: number): ServiceError {
  return new ServiceError(
    status.DEADLINE_EXCEEDED,
    `the stream ran for the server's maximum stream lifetime of ${maxMs} ms; resume with a new call`,
    [errorInfo("STREAM_LIFETIME_EXCEEDED", { maxMs: String(maxMs) })],
  );
}

/** A started call: its context, `settle` to call once the answer is decided, and `end` to end it with a status. */
export interface StartedCall {
  readonly context: CallContext;
  settle(): void;
  /** end aborts the call (its handler, its statements) with the status it then answers. */
  end(reason: ServiceError): void;
}

/**
 * startCall makes the one scope of a call. Its cancellation aborts when the client
 * cancels before the answer is decided (grpc-js also emits "cancelled" when
 * the stream of a finished call closes) and, for a server stream, when it has
 * run for streamLifetimeMs: the reason is then the status the call ends with.
 * The lifetime is not shown as the call's deadline, so it is not mistaken
 * for the client's own.
 */
export function startCall(
  method: DescMethod,
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
  streamLifetimeMs: number | undefined,
): StartedCall {
  const cancellation = new Cancellation();
  let settled = false;
  call.once("cancelled", () => {
    if (!settled) cancellation.abort(cancelledByClient);
  });
  const stream = method.methodKind === "server_streaming";
  const lifetime =
    stream && streamLifetimeMs !== undefined
      ? setTimeout(() => cancellation.abort(lifetimeExceeded(streamLifetimeMs)), streamLifetimeMs)
      : undefined;
  const deadline = call.getDeadline();
  const requestId = requestIdOf(call.metadata);
  const context: CallContext = {
    service: method.parent.typeName,
    method: method.name,
    type: stream ? "server_stream" : "unary",
    peer: call.getPeer(),
    requestId,
    deadline: deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : undefined,
    cancellation,
    readOnly: method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS,
    minLsn: minLsnOf(call.metadata),
    caller: undefined,
    startedAt: process.hrtime.bigint(),
    counters: { sqlStatements: 0, messagesSent: 0 },
    span: undefined,
    descriptor: method,
    metadata: call.metadata,
    trailers: new Metadata(),
  };
  context.trailers.set(requestIdKey, requestId);
  return {
    context,
    settle: () => {
      settled = true;
      clearTimeout(lifetime);
    },
    end: (reason) => {
      if (!settled) cancellation.abort(reason);
    },
  };
}

/**
 * endedBy is the status a call was ended with by the server or its client
 * (the stream lifetime, a cancel), whatever its handler did since; undefined
 * while the call runs its course.
 */
export function endedBy(context: CallScope): ServiceError | undefined {
  const { aborted, reason } = context.cancellation;
  return aborted && reason instanceof ServiceError ? reason : undefined;
}
