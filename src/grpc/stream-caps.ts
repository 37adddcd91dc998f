import { status } from "@grpc/grpc-js";
import type { Middleware } from "./adapter.js";
import { ServiceError, errorInfo } from "./errors.js";

/** StreamCaps are how many server streams may be open at once. */
export interface StreamCaps {
  /** perConnection is the most one client connection may have open (STREAM_MAX_PER_CONNECTION). */
  perConnection: number;
  /** perProcess is the most the whole process serves (STREAM_MAX_PER_PROCESS). */
  perProcess: number;
}

function tooManyStreams(scope: "connection" | "process", limit: number, variable: string): ServiceError {
  const holder = scope === "connection" ? "this connection has" : "the server has";
  return new ServiceError(
    status.RESOURCE_EXHAUSTED,
    `${holder} ${limit} streams open, the most it may (${variable}); retry once one of them has ended`,
    [errorInfo("TOO_MANY_STREAMS", { scope, limit: String(limit) })],
  );
}

/**
 * streamCaps refuses a server stream beyond the caps with RESOURCE_EXHAUSTED,
 * reason TOO_MANY_STREAMS, before its handler runs; unary calls pass. A
 * connection is told apart by its peer address (one per TCP connection). A
 * stream counts from its first message pulled until it ends, however it ends.
 */
export function streamCaps({ perConnection, perProcess }: StreamCaps): Middleware {
  const open = new Map<string, number>();
  let total = 0;
  return (next) => (request, context) => {
    if (context.type !== "server_stream") return next(request, context);
    const { peer } = context;
    return (async function* () {
      const mine = open.get(peer) ?? 0;
      if (mine >= perConnection) throw tooManyStreams("connection", perConnection, "STREAM_MAX_PER_CONNECTION");
      if (total >= perProcess) throw tooManyStreams("process", perProcess, "STREAM_MAX_PER_PROCESS");
      open.set(peer, mine + 1);
      total++;
      try {
        yield* next(request, context) as AsyncIterable<unknown>;
      } finally {
        total--;
        const left = open.get(peer)! - 1;
        if (left === 0) open.delete(peer);
        else open.set(peer, left);
      }
    })();
  };
}
