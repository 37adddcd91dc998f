import type { DescService } from "@bufbuild/protobuf";
import { Metadata, status } from "@grpc/grpc-js";
import type { ClientCallOptions, PromiseClient } from "./transport.js";
import { toBlogClientError } from "./errors.js";
import type { RetryOptions } from "./options.js";
import { pause } from "./pause.js";

/** CallDefaults are applied to every call that does not set its own. */
export interface CallDefaults {
  /** deadlineMs is the deadline of unary calls; streams run until done, cancelled or their own deadline. */
  deadlineMs: number;
  metadata: Metadata;
  /** retry is the backoff of retried calls (see keyedRetry); false: no retries. */
  retry: RetryOptions | false;
}

/**
 * keyedRetry runs a create that carries a request_id (AIP-155) again on
 * UNAVAILABLE, with the same request_id, until it succeeds, fails otherwise,
 * or the next attempt could not start before the deadline (the last
 * UNAVAILABLE is then thrown). The request_id makes a repeat safe: the
 * service creates once and replays. gRPC's own retry policy covers only the
 * idempotent methods, and at most 5 attempts (about 1.5 s), shorter than a
 * database failover or switchover. Backoff: full jitter, growing from
 * initialBackoffMs by backoffMultiplier up to maxBackoffMs.
 */
async function keyedRetry<T>(
  attempt: () => Promise<T>,
  deadline: number,
  retry: RetryOptions,
  signal: AbortSignal | undefined,
): Promise<T> {
  let backoff = retry.initialBackoffMs ?? 100;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      const wait = Math.random() * backoff;
      const unavailable = (error as { code?: unknown }).code === status.UNAVAILABLE;
      const more = retry.maxAttempts === undefined || tries < retry.maxAttempts;
      if (!unavailable || !more || signal?.aborted === true || Date.now() + wait >= deadline) throw error;
      await pause(wait, signal);
      backoff = Math.min(backoff * (retry.backoffMultiplier ?? 2), retry.maxBackoffMs ?? 5000);
    }
  }
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
        const attempt = () => call(request, { ...options, deadline, metadata: metadata(options) }) as Promise<unknown>;
        const keyed = ((request as { requestId?: unknown }).requestId ?? "") !== "";
        try {
          return await (keyed && defaults.retry !== false
            ? keyedRetry(attempt, Number(deadline), defaults.retry, options.signal)
            : attempt());
        } catch (error) {
          throw toBlogClientError(error);
        }
      },
    ];
  });
  return Object.fromEntries(wrapped) as PromiseClient<S>;
}
