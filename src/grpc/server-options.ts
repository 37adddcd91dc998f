import type { ChannelOptions } from "@grpc/grpc-js";

const MiB = 1024 * 1024;

/**
 * serverOptions are the grpc-js server settings, chosen rather than inherited
 * (the README's "Server options" table explains each). GRPC_* environment
 * variables override some of them (see config.ts).
 */
export const serverOptions = {
  /** Ping each connection after 2 minutes without activity: finds dead peers and keeps NAT/LB state alive. */
  "grpc.keepalive_time_ms": 120_000,
  /** A ping unanswered for 20 s closes the connection (gRPC's own default). */
  "grpc.keepalive_timeout_ms": 20_000,
  /**
   * The ping policy clients may rely on: pings every 30 s or more, also with no
   * call in flight. gRPC C-core and Go servers enforce these keys (answering
   * `too_many_pings` otherwise); grpc-js 1.14 accepts any ping rate, so here
   * they state the contract a proxy in front of us must honour too.
   */
  "grpc.http2.min_ping_interval_without_data_ms": 30_000,
  "grpc.keepalive_permit_without_calls": 1,
  /** Requests are small (a post is at most 100,000 characters): gRPC's usual 4 MiB. */
  "grpc.max_receive_message_length": 4 * MiB,
  /** A response larger than a default client accepts (4 MiB) fails here, fast, as RESOURCE_EXHAUSTED. */
  "grpc.max_send_message_length": 4 * MiB,
  /** Connections close after 5 minutes (±10% jitter), so clients reconnect and spread over new replicas. */
  "grpc.max_connection_age_ms": 300_000,
  /** Calls in flight on an aged connection get 30 s to finish before it is cut. */
  "grpc.max_connection_age_grace_ms": 30_000,
  /**
   * At most 100 calls run at once on one connection (HTTP/2
   * SETTINGS_MAX_CONCURRENT_STREAMS), bounding the work one connection can
   * start at once (grpc-js's default is unbounded). Further calls from grpc-js
   * clients wait in the client until a stream frees up; they are not refused.
   */
  "grpc.max_concurrent_streams": 100,
  // grpc.enable_channelz stays at grpc-js's default (on), though no channelz
  // service is served: with it 0, grpc-js 1.14 tracks sessions only in
  // channelz's map, so forceShutdown never destroyed the connection of a
  // stalled export and SIGTERM hung past the grace period (test/shutdown.test.ts).
} as const satisfies ChannelOptions;

/** serverOptionVariables are the environment variables (positive integers) that override serverOptions. */
export const serverOptionVariables = {
  GRPC_KEEPALIVE_TIME_MS: "grpc.keepalive_time_ms",
  GRPC_KEEPALIVE_TIMEOUT_MS: "grpc.keepalive_timeout_ms",
  GRPC_MAX_RECEIVE_MESSAGE_BYTES: "grpc.max_receive_message_length",
  GRPC_MAX_SEND_MESSAGE_BYTES: "grpc.max_send_message_length",
  GRPC_MAX_CONNECTION_AGE_MS: "grpc.max_connection_age_ms",
  GRPC_MAX_CONNECTION_AGE_GRACE_MS: "grpc.max_connection_age_grace_ms",
  GRPC_MAX_CONCURRENT_STREAMS: "grpc.max_concurrent_streams",
} as const satisfies Record<string, keyof typeof serverOptions>;
