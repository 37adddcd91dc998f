import { isSpanContextValid } from "@opentelemetry/api";
import { status } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import type { CallScope } from "../call/scope.js";
import type { CallObserver } from "./observe.js";

/** elapsedMs is how long the call has run, in milliseconds with microsecond precision. */
export function elapsedMs(scope: CallScope): number {
  return Math.round(Number(process.hrtime.bigint() - scope.startedAt) / 1e3) / 1e3;
}

/**
 * logCalls writes one info line per finished call: which method, how it
 * ended, how long it took, who called (peer, and the name of the bearer token
 * when authentication is on), the request id and how many SQL statements it
 * ran. Request and response bodies and metadata values are never logged.
 */
export function logCalls(log: Logger): CallObserver {
  return {
    end(scope, code) {
      const caller = scope.caller;
      const ms = elapsedMs(scope);
      const trace = scope.span?.spanContext();
      const line = {
        method: `/${scope.service}/${scope.method}`,
        grpcType: scope.type,
        grpcCode: status[code],
        grpcStatus: code,
        durationMs: ms,
        peer: scope.peer,
        ...(caller === undefined ? {} : { caller }),
        requestId: scope.requestId,
        sqlStatements: scope.counters.sqlStatements,
        ...(scope.type === "server_stream" ? { messagesSent: scope.counters.messagesSent } : {}),
        ...(trace !== undefined && isSpanContextValid(trace) ? { traceId: trace.traceId } : {}),
      };
      log.info(line, `${scope.service}/${scope.method} ${status[code]} ${ms} ms`);
    },
  };
}
