import { fromBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import type {
  Metadata,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
  StatusObject,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { runInCall } from "../call/scope.js";
import type { Cancellation } from "../call/scope.js";
import { encode, methodDefinition } from "../protocol/method.js";
import type { Init } from "../protocol/method.js";
import { cancelledByClient, endedBy, startCall } from "./call-context.js";
import type { CallContext, StartedCall } from "./call-context.js";
import { ServiceError, errorInfo, toServiceError, toStatus } from "./errors.js";
import type { ErrorLogger } from "./errors.js";
import { replyWithin } from "./stream-budget.js";

/**
 * Handler types for one method: unary handlers resolve once, server-streaming
 * handlers yield messages. Returning is the only way to answer, so a handler
 * cannot answer twice or forget to answer.
 */
export type MethodImpl<M extends DescMethod> = M extends { methodKind: "unary" }
  ? (request: MessageShape<M["input"]>, context: CallContext) => Promise<Init<M["output"]>>
  : M extends { methodKind: "server_streaming" }
    ? (request: MessageShape<M["input"]>, context: CallContext) => AsyncIterable<Init<M["output"]>>
    : never;

/** ServiceImpl is an object with one handler per method of a generated service. */
export type ServiceImpl<S extends DescService> = S extends { method: infer Methods }
  ? { [K in keyof Methods]: Methods[K] extends DescMethod ? MethodImpl<Methods[K]> : never }
  : never;

/**
 * Middleware wraps every handler of a server: observation, authentication,
 * validation, ... It returns what the handler returns (a promise, or an
 * async iterable for a server stream) and throws to answer with a status.
 */
export type Middleware = (
  next: (request: unknown, context: CallContext) => unknown,
) => (request: unknown, context: CallContext) => unknown;

/**
 * Undecodable stands in for request bytes that are not a valid message:
 * grpc-js answers a throwing deserializer with INTERNAL, but bad bytes are the
 * caller's fault, so the adapter answers INVALID_ARGUMENT itself.
 */
class Undecodable {}

function decode(schema: DescMessage, bytes: Buffer): unknown {
  try {
    return fromBinary(schema, bytes);
  } catch {
    return new Undecodable();
  }
}

/**
 * decoded lets a well-formed request through and refuses undecodable bytes.
 * It runs after the middleware that needs no request (authentication), just
 * before the first that reads it, so an unauthenticated caller learns nothing.
 */
export function decoded(context: CallContext, request: unknown): unknown {
  if (!(request instanceof Undecodable)) return request;
  throw new ServiceError(
    status.INVALID_ARGUMENT,
    `the request is not a valid ${context.descriptor.input.typeName} message`,
    [errorInfo("MALFORMED_REQUEST")],
  );
}

/**
 * serviceDefinition is the grpc-js server view of a protobuf-es service
 * descriptor. Replies reach grpc-js already encoded (see `implement`), so its
 * serializer passes them on.
 */
export function serviceDefinition(service: DescService): ServiceDefinition {
  return Object.fromEntries(
    service.methods.map((m) => [
      m.localName,
      {
        ...methodDefinition(m),
        requestDeserialize: (bytes: Buffer) => decode(m.input, bytes),
        responseSerialize: (encoded: Buffer) => encoded,
      },
    ]),
  );
}

/**
 * encodedWithin encodes a reply message inside the call, where a failure is
 * still the call's own status: grpc-js refuses a message over its send limit
 * with RESOURCE_EXHAUSTED (and one it cannot serialize with INTERNAL) after
 * the handler has returned, so logs and metrics would have counted it as OK.
 */
function encodedWithin(schema: DescMessage, value: unknown, maxBytes: number): Buffer {
  const bytes = encode(schema, value);
  replyWithin(bytes.length, maxBytes, "ask for less: a smaller page, fewer ids, or view BASIC");
  return bytes;
}

/** encodedStream encodes each message of a server stream as it is pulled (see encodedWithin). */
async function* encodedStream(
  schema: DescMessage,
  messages: AsyncIterable<unknown>,
  maxBytes: number,
): AsyncGenerator<Buffer> {
  for await (const message of messages) yield encodedWithin(schema, message, maxBytes);
}

/** written writes one message and settles once HTTP/2 has taken it, or once the call is over. */
function written(
  call: ServerWritableStream<unknown, unknown>,
  cancellation: Cancellation,
  message: unknown,
): Promise<void> {
  return new Promise((resolve) => {
    const stopListening = cancellation.onAbort(() => resolve());
    call.write(message, () => {
      stopListening();
      resolve();
    });
  });
}

/**
 * writeAll pulls the next message only once HTTP/2 has taken the one before:
 * each message is serialized as it is written and at most one is in flight.
 * Waiting for 'drain' instead let grpc-js queue 16 unsent messages (its
 * highWaterMark), 8,000 rows of an export as message objects, which then lived
 * long enough for V8 to promote them to the old generation: the heap grew by
 * about 90 MB during a long export (bench/results/export.md). It stops as soon
 * as the call is aborted (client gone, stream lifetime over).
 */
async function writeAll(
  call: ServerWritableStream<unknown, unknown>,
  started: StartedCall,
  messages: AsyncIterable<unknown>,
  idleWriteMs: number | undefined,
) {
  const { cancellation } = started.context;
  for await (const message of messages) {
    if (cancellation.aborted) return;
    const idle =
      idleWriteMs === undefined
        ? undefined
        : setTimeout(() => started.end(idleWriteExceeded(idleWriteMs)), idleWriteMs);
    await written(call, cancellation, message);
    clearTimeout(idle);
    if (cancellation.aborted) return;
  }
}

/** The end of a server stream whose client took no message for idleWriteMs (it stopped reading). */
function idleWriteExceeded(idleWriteMs: number): ServiceError {
  return new ServiceError(
    status.DEADLINE_EXCEEDED,
    `the client read nothing for ${idleWriteMs} ms, the server's stream idle-write timeout; resume with a new call`,
    [errorInfo("STREAM_IDLE_WRITE_TIMEOUT", { idleWriteMs: String(idleWriteMs) })],
  );
}

/** ImplementOptions are what every method of one service shares. */
export interface ImplementOptions {
  middleware?: Middleware[];
  logError: ErrorLogger;
  /** streamLifetimeMs ends server streams still running after it with DEADLINE_EXCEEDED. */
  streamLifetimeMs?: number;
  /** streamIdleWriteMs ends server streams whose client takes no message for that long (it stopped reading). */
  streamIdleWriteMs?: number;
  /** maxSendBytes is the server's send limit (GRPC_MAX_SEND_MESSAGE_BYTES): a larger reply answers RESOURCE_EXHAUSTED. */
  maxSendBytes?: number;
}

/**
 * implement turns typed async handlers into a grpc-js implementation. Each
 * call gets its scope here (startCall) and runs inside it, middleware and
 * stream included; every thrown value goes through toServiceError, so callers
 * only ever see a deliberate status.
 */
export function implement<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: ImplementOptions,
): UntypedServiceImplementation {
  const handlers = impl as Record<string, (request: unknown, context: CallContext) => unknown>;
  const entries = service.methods.map((method) => {
    const own = handlers[method.localName];
    if (own === undefined) throw new Error(`${service.typeName}.${method.name} has no handler`);
    const maxBytes = options.maxSendBytes ?? Infinity;
    // The innermost step encodes the reply, so that every middleware sees the status the client gets.
    const encoded: (request: unknown, context: CallContext) => unknown =
      method.methodKind === "server_streaming"
        ? (request: unknown, context: CallContext) =>
            encodedStream(
              method.output,
              own.call(impl, decoded(context, request), context) as AsyncIterable<unknown>,
              maxBytes,
            )
        : async (request: unknown, context: CallContext) =>
            encodedWithin(method.output, await own.call(impl, decoded(context, request), context), maxBytes);
    const handler = (options.middleware ?? []).reduceRight((next, wrap) => wrap(next), encoded);
    const answer = (error: unknown, context: CallContext): Partial<StatusObject> => {
      const result = toStatus(endedBy(context) ?? toServiceError(error, options.logError));
      result.metadata?.merge(context.trailers);
      return result;
    };
    if (method.methodKind === "unary") {
      return [
        method.localName,
        (call: ServerUnaryCall<unknown, unknown>, callback: (e: unknown, v?: unknown, t?: Metadata) => void) => {
          const { context, settle } = startCall(method, call, undefined);
          runInCall(context, () => Promise.resolve().then(() => handler(call.request, context))).then(
            (response) => {
              settle();
              callback(null, response, context.trailers);
            },
            (error: unknown) => {
              settle();
              callback(answer(error, context));
            },
          );
        },
      ];
    }
    if (method.methodKind === "server_streaming") {
      return [
        method.localName,
        (call: ServerWritableStream<unknown, unknown>) => {
          const started = startCall(method, call, options.streamLifetimeMs);
          const { context, settle } = started;
          const run = async () => {
            const messages = handler(call.request, context) as AsyncIterable<unknown>;
            await writeAll(call, started, messages, options.streamIdleWriteMs);
            // The server ended the stream (its lifetime): the caller hears why. A cancelled call hears nothing.
            const ended = endedBy(context);
            if (ended !== undefined && ended !== cancelledByClient) throw ended;
          };
          runInCall(context, () => Promise.resolve().then(run)).then(
            () => {
              settle();
              call.end(context.trailers);
            },
            (error: unknown) => {
              settle();
              call.emit("error", answer(error, context));
            },
          );
        },
      ];
    }
    throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
  });
  return Object.fromEntries(entries) as UntypedServiceImplementation;
}
