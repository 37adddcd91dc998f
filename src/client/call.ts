import type { DescService } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import type { ClientCallOptions, PromiseClient } from "./transport.js";
import { toBlogClientError } from "./errors.js";

/** CallDefaults are applied to every call that does not set its own. */
export interface CallDefaults {
  /** deadlineMs is the deadline of unary calls; streams run until done, cancelled or their own deadline. */
  deadlineMs: number;
  metadata: Metadata;
}

type AnyMethod = (request: unknown, options?: ClientCallOptions) => unknown;

/** mergeMetadata starts from the defaults; a key set on the call replaces that key's default values. */
export function mergeMetadata(defaults: Metadata, call: Metadata | undefined): Metadata {
  const merged = defaults.clone();
  if (call === undefined) return merged;
  for (const key of Object.keys(call.getMap())) merged.remove(key);
  merged.merge(call);
  return merged;
}

async function* rethrowing(start: () => AsyncIterable<unknown>): AsyncGenerator<unknown> {
  const stream = start();
  let finished = false;
  try {
    for await (const message of stream) yield message;
    finished = true;
  } catch (error) {
    finished = true;
    throw toBlogClientError(error);
  } finally {
    // A consumer that stops iterating early cancels the call on the server.
    if (!finished) (stream as { cancel?: () => void }).cancel?.();
  }
}

/**
 * withDefaults wraps a typed client from the adapter: default deadline and
 * metadata on every call, and every failure (unary or stream) as a
 * BlogClientError. Streams start when iteration starts.
 */
export function withDefaults<S extends DescService>(
  service: S,
  client: PromiseClient<S>,
  defaults: CallDefaults,
): PromiseClient<S> {
  const methods = client as unknown as Record<string, AnyMethod>;
  const wrapped = service.methods.map((method) => {
    const call = methods[method.localName];
    if (call === undefined) throw new Error(`${service.typeName}.${method.name} is missing from the client`);
    const metadata = (options: ClientCallOptions) => mergeMetadata(defaults.metadata, options.metadata);
    if (method.methodKind === "server_streaming") {
      return [
        method.localName,
        (request: unknown, options: ClientCallOptions = {}) =>
          rethrowing(() => call(request, { ...options, metadata: metadata(options) }) as AsyncIterable<unknown>),
      ];
    }
    return [
      method.localName,
      async (request: unknown, options: ClientCallOptions = {}) => {
        const deadline = options.deadline ?? Date.now() + defaults.deadlineMs;
        try {
          return await call(request, { ...options, deadline, metadata: metadata(options) });
        } catch (error) {
          throw toBlogClientError(error);
        }
      },
    ];
  });
  return Object.fromEntries(wrapped) as PromiseClient<S>;
}
