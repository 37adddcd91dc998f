import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { ChannelCredentials, ChannelOptions, Metadata } from "@grpc/grpc-js";

/** RetryOptions tune gRPC's own retry policy, which only idempotent methods get. */
export interface RetryOptions {
  /** maxAttempts counts the first try; default 5. */
  maxAttempts?: number;
  /** initialBackoffMs is the mean wait before the first retry; default 100. */
  initialBackoffMs?: number;
  /** maxBackoffMs caps the wait between attempts; default 5000. */
  maxBackoffMs?: number;
  /** backoffMultiplier grows the wait after each retry; default 2. */
  backoffMultiplier?: number;
}

/** BlogClientOptions are what a caller of createBlogClient may choose; every field has a default. */
export interface BlogClientOptions {
  /** credentials for the channel, e.g. `credentials.createSsl()`; default insecure (plaintext). */
  credentials?: ChannelCredentials;
  /** defaultDeadlineMs is the deadline of unary calls that set none; default 10000. */
  defaultDeadlineMs?: number;
  /** metadata is sent with every call; per-call metadata replaces it key by key. */
  metadata?: Metadata;
  /** token is a bearer token (the server's AUTH_TOKENS_FILE) sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /**
   * readYourWrites (default true) sends the highest `x-blog-min-lsn` this client has received with its later
   * calls, so reads served by a read replica see this client's earlier writes; `false` lets reads see lag.
   */
  readYourWrites?: boolean;
  /**
   * retry tunes the retries on UNAVAILABLE: gRPC's retry policy of idempotent methods, and the
   * SDK's own retries of creates that carry a request_id (until their deadline); `false` turns both off.
   */
  retry?: RetryOptions | false;
  /** channelOptions are extra grpc-js channel options; they win over the ones set here. */
  channelOptions?: ChannelOptions;
}

/**
 * isIdempotent reads the method's `idempotency_level` from the proto, so the
 * retry list can never drift from the API: a retried call must be safe to run
 * twice.
 */
export function isIdempotent(method: DescMethod): boolean {
  return (
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
  );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`;

/**
 * serviceConfig is the gRPC service config of the channel: round_robin over
 * every resolved address, and a retry policy on UNAVAILABLE for the
 * idempotent methods of the given services.
 */
export function serviceConfig(services: readonly DescService[], retry: RetryOptions | false = {}): object {
  const names = services.flatMap((service) =>
    service.methods.filter(isIdempotent).map((method) => ({ service: service.typeName, method: method.name })),
  );
  const methodConfig =
    retry === false || names.length === 0
      ? []
      : [
          {
            name: names,
            retryPolicy: {
              maxAttempts: retry.maxAttempts ?? 5,
              initialBackoff: seconds(retry.initialBackoffMs ?? 100),
              maxBackoff: seconds(retry.maxBackoffMs ?? 5000),
              backoffMultiplier: retry.backoffMultiplier ?? 2,
              retryableStatusCodes: ["UNAVAILABLE"],
            },
          },
        ];
  return { loadBalancingConfig: [{ round_robin: {} }], methodConfig };
}

/**
 * channelOptions turns BlogClientOptions into grpc-js channel options. The
 * service config is ours alone: resolution of one from DNS TXT records is
 * off, so a `dns:///` target cannot replace the retry policy (and resolving
 * asks for A/AAAA records only).
 */
export function channelOptions(services: readonly DescService[], options: BlogClientOptions): ChannelOptions {
  return {
    "grpc.enable_retries": 1,
    "grpc.service_config": JSON.stringify(serviceConfig(services, options.retry)),
    "grpc.service_config_disable_resolution": 1,
    ...options.channelOptions,
  };
}
