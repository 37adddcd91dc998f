import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Client, Metadata, status } from "@grpc/grpc-js";
import type {
  CallOptions,
  ChannelCredentials,
  ChannelOptions,
  MethodDefinition,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
  ServiceError as GrpcServiceError,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { ServiceError, errorInfo, toServiceError, toStatus } from "./errors.js";
import type { ErrorLogger } from "./errors.js";

/** CallContext is what a handler may know about its call besides the request. */
export interface CallContext {
  readonly method: DescMethod;
  readonly metadata: Metadata;
  /** signal aborts when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  readonly deadline: Date | undefined;
  readonly peer: string;
  /** trailers go back with the status, on success and on failure (request id, commit LSN, ...). */
  readonly trailers: Metadata;
}

type Init<M extends DescMessage> = MessageInitShape<M>;

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

/** Middleware wraps every handler of a server: validation, logging, ... */
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

/** decoded lets a well-formed request through and refuses undecodable bytes before any middleware. */
function decoded(method: DescMethod, request: unknown): unknown {
  if (!(request instanceof Undecodable)) return request;
  throw new ServiceError(status.INVALID_ARGUMENT, `the request is not a valid ${method.input.typeName} message`, [
    errorInfo("MALFORMED_REQUEST"),
  ]);
}

function methodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (value) => Buffer.from(toBinary(method.input, create(method.input, value as Init<DescMessage>))),
    requestDeserialize: (bytes: Buffer) => decode(method.input, bytes),
    responseSerialize: (value) =>
      Buffer.from(toBinary(method.output, create(method.output, value as Init<DescMessage>))),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

/** serviceDefinition is the grpc-js view of a protobuf-es service descriptor. */
export function serviceDefinition(service: DescService): ServiceDefinition {
  return Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(m)]));
}

/** The abort reason of every cancelled call, built once: a DOMException per call costs measurably. */
const cancelledReason = new ServiceError(status.CANCELLED, "the call was cancelled by the client or its deadline");

/**
 * callContext builds a handler's view of its call and a `settle` to call once
 * the answer is decided: grpc-js also emits "cancelled" when the stream of a
 * finished call closes, and only a cancel before the answer may abort.
 */
function callContext(
  method: DescMethod,
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
): [CallContext, () => void] {
  const controller = new AbortController();
  let settled = false;
  call.once("cancelled", () => {
    if (!settled) controller.abort(cancelledReason);
  });
  const deadline = call.getDeadline();
  const context: CallContext = {
    method,
    metadata: call.metadata,
    signal: controller.signal,
    deadline: deadline instanceof Date ? deadline : Number.isFinite(deadline) ? new Date(deadline) : undefined,
    peer: call.getPeer(),
    trailers: new Metadata(),
  };
  return [context, () => (settled = true)];
}

/** written writes one message and settles once HTTP/2 has taken it, or once the call is over. */
function written(call: ServerWritableStream<unknown, unknown>, message: unknown): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("cancelled", done);
      resolve();
    };
    call.on("cancelled", done);
    call.write(message, done);
  });
}

/**
 * writeAll pulls the next message only once HTTP/2 has taken the one before:
 * each message is serialized as it is written and at most one is in flight.
 * Waiting for 'drain' instead let grpc-js queue 16 unsent messages (its
 * highWaterMark), 8,000 rows of an export as message objects, which then lived
 * long enough for V8 to promote them to the old generation: the heap grew by
 * about 90 MB during a long export (bench/results/export.md).
 */
async function writeAll(call: ServerWritableStream<unknown, unknown>, messages: AsyncIterable<unknown>) {
  for await (const message of messages) {
    if (call.cancelled) return;
    await written(call, message);
  }
}

/**
 * implement turns typed async handlers into a grpc-js implementation. Every
 * thrown value goes through toServiceError, so callers only ever see a
 * deliberate status.
 */
export function implement<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: { middleware?: Middleware[]; logError: ErrorLogger },
): UntypedServiceImplementation {
  const handlers = impl as Record<string, (request: unknown, context: CallContext) => unknown>;
  const entries = service.methods.map((method) => {
    const own = handlers[method.localName];
    if (own === undefined) throw new Error(`${service.typeName}.${method.name} has no handler`);
    const handler = (options.middleware ?? []).reduceRight((next, wrap) => wrap(next), own.bind(impl));
    const fail = (error: unknown, context: CallContext) => {
      const answer = toStatus(toServiceError(error, options.logError));
      answer.metadata?.merge(context.trailers);
      return answer;
    };
    if (method.methodKind === "unary") {
      return [
        method.localName,
        (call: ServerUnaryCall<unknown, unknown>, callback: (e: unknown, v?: unknown, t?: Metadata) => void) => {
          const [context, settle] = callContext(method, call);
          Promise.resolve()
            .then(() => handler(decoded(method, call.request), context))
            .then(
              (response) => {
                settle();
                callback(null, response, context.trailers);
              },
              (error: unknown) => {
                settle();
                callback(fail(error, context));
              },
            );
        },
      ];
    }
    if (method.methodKind === "server_streaming") {
      return [
        method.localName,
        (call: ServerWritableStream<unknown, unknown>) => {
          const [context, settle] = callContext(method, call);
          Promise.resolve()
            .then(() => writeAll(call, handler(decoded(method, call.request), context) as AsyncIterable<unknown>))
            .then(
              () => {
                settle();
                call.end(context.trailers);
              },
              (error: unknown) => {
                settle();
                call.emit("error", fail(error, context));
              },
            );
        },
      ];
    }
    throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
  });
  return Object.fromEntries(entries) as UntypedServiceImplementation;
}

/** Per-call client options: a deadline, metadata and an abort signal. */
export interface ClientCallOptions {
  deadline?: Date | number;
  metadata?: Metadata;
  signal?: AbortSignal;
}

/** Typed client methods for one method: promises for unary, async iterables for streams. */
export type ClientMethod<M extends DescMethod> = M extends { methodKind: "unary" }
  ? (request: Init<M["input"]>, options?: ClientCallOptions) => Promise<MessageShape<M["output"]>>
  : M extends { methodKind: "server_streaming" }
    ? (request: Init<M["input"]>, options?: ClientCallOptions) => AsyncIterable<MessageShape<M["output"]>>
    : never;

/** PromiseClient is a typed, promise-based client for a generated service. */
export type PromiseClient<S extends DescService> = S extends { method: infer Methods }
  ? { [K in keyof Methods]: Methods[K] extends DescMethod ? ClientMethod<Methods[K]> : never }
  : never;

/** The grpc-js error a client call rejects with: it carries code, details and trailers. */
export type ClientError = GrpcServiceError;

/**
 * createClient builds a typed client over one grpc-js channel, from the same
 * descriptors the server uses.
 */
export function createClient<S extends DescService>(
  service: S,
  address: string,
  credentials: ChannelCredentials,
  channelOptions: ChannelOptions = {},
): PromiseClient<S> & { close(): void } {
  const client = new Client(address, credentials, channelOptions);
  const methods = service.methods.map((method) => {
    const def = methodDefinition(method);
    const callOptions = (o: ClientCallOptions): CallOptions =>
      o.deadline === undefined ? {} : { deadline: o.deadline };
    if (method.methodKind === "unary") {
      const call = (request: unknown, options: ClientCallOptions = {}) =>
        new Promise((resolve, reject) => {
          const c = client.makeUnaryRequest(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request,
            options.metadata ?? new Metadata(),
            callOptions(options),
            (error, response) => (error ? reject(error) : resolve(response)),
          );
          options.signal?.addEventListener("abort", () => c.cancel(), { once: true });
        });
      return [method.localName, call];
    }
    if (method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
    }
    const stream = (request: unknown, options: ClientCallOptions = {}) => {
      const c = client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        options.metadata ?? new Metadata(),
        callOptions(options),
      );
      options.signal?.addEventListener("abort", () => c.cancel(), { once: true });
      return c as AsyncIterable<unknown>;
    };
    return [method.localName, stream];
  });
  return { ...Object.fromEntries(methods), close: () => client.close() } as PromiseClient<S> & { close(): void };
}
