import type { DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import { Client, Metadata } from "@grpc/grpc-js";
import type { CallOptions, ChannelCredentials, ChannelOptions, ServiceError as GrpcServiceError } from "@grpc/grpc-js";
import { methodDefinition } from "../protocol/method.js";
import type { Init } from "../protocol/method.js";

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
 * descriptors the server uses. It is the client half of the transport: the
 * SDK and the tests call the service through it.
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
    /**
     * cancelOnAbort ends the call when the caller's signal aborts, at once if
     * it already has, and lets go of the signal when the call ends, so a
     * long-lived signal collects no listeners.
     */
    const cancelOnAbort = <C extends { cancel(): void; once(event: "status", listener: () => void): unknown }>(
      c: C,
      o: ClientCallOptions,
    ): C => {
      const { signal } = o;
      if (signal === undefined) return c;
      if (signal.aborted) {
        c.cancel();
        return c;
      }
      const cancel = () => c.cancel();
      signal.addEventListener("abort", cancel, { once: true });
      c.once("status", () => signal.removeEventListener("abort", cancel));
      return c;
    };
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
          cancelOnAbort(c, options);
        });
      return [method.localName, call];
    }
    if (method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
    }
    const stream = (request: unknown, options: ClientCallOptions = {}) =>
      cancelOnAbort(
        client.makeServerStreamRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          request,
          options.metadata ?? new Metadata(),
          callOptions(options),
        ),
        options,
      ) as AsyncIterable<unknown>;
    return [method.localName, stream];
  });
  return { ...Object.fromEntries(methods), close: () => client.close() } as PromiseClient<S> & { close(): void };
}
