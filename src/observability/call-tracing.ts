import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace } from "@opentelemetry/api";
import type { TextMapGetter, Tracer } from "@opentelemetry/api";
import { Metadata, status } from "@grpc/grpc-js";
import {
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME,
  DB_SYSTEM_NAME_VALUE_POSTGRESQL,
} from "@opentelemetry/semantic-conventions";
import type { CallObserver } from "./observe.js";
import type { StatementObserver } from "../db/statements.js";

/** The name spans are reported under (the OpenTelemetry instrumentation scope). */
export const instrumentationName = "blog-service";

/** Reads W3C `traceparent`/`tracestate` from incoming gRPC metadata. */
const metadataGetter: TextMapGetter<Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((v): v is string => typeof v === "string");
    return values.length === 0 ? undefined : values;
  },
};

// Semantic conventions for gRPC servers: these codes are the server's fault.
const serverErrors = new Set([
  status.UNKNOWN,
  status.DEADLINE_EXCEEDED,
  status.UNIMPLEMENTED,
  status.INTERNAL,
  status.UNAVAILABLE,
  status.DATA_LOSS,
]);

/**
 * traceCalls gives every call a SERVER span named `blog.v1.UserService/GetUser`,
 * continuing the caller's trace when its metadata carries a W3C `traceparent`.
 * It uses whatever tracer provider is registered: with none (tracing off) the
 * API's no-op tracer makes this a handful of cheap calls per RPC.
 */
export function traceCalls(tracer: Tracer = trace.getTracer(instrumentationName)): CallObserver {
  return {
    start(scope) {
      const parent = propagation.extract(ROOT_CONTEXT, scope.metadata, metadataGetter);
      const span = tracer.startSpan(
        `${scope.service}/${scope.method}`,
        {
          kind: SpanKind.SERVER,
          attributes: { "rpc.system": "grpc", "rpc.service": scope.service, "rpc.method": scope.method },
        },
        parent,
      );
      scope.span = span;
    },
    end(scope, code) {
      const span = scope.span;
      if (span === undefined || !span.isRecording()) return;
      span.setAttribute("rpc.grpc.status_code", code);
      if (serverErrors.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: status[code] });
      span.end();
    },
  };
}

/**
 * traceStatements makes each SQL statement a CLIENT child span of the call
 * that ran it, with the statement text (placeholders, never bindings). Only
 * calls with a recording span pay for it.
 */
export function traceStatements(tracer: Tracer = trace.getTracer(instrumentationName)): StatementObserver {
  return {
    start(statement) {
      const parent = statement.call?.span;
      if (parent === undefined || !parent.isRecording()) return;
      statement.span = tracer.startSpan(
        statement.operation,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            "db.system": "postgresql",
            "db.statement": statement.sql,
            [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_NAME_VALUE_POSTGRESQL,
            [ATTR_DB_QUERY_TEXT]: statement.sql,
            [ATTR_DB_OPERATION_NAME]: statement.operation,
          },
        },
        trace.setSpan(ROOT_CONTEXT, parent),
      );
    },
    end(statement, error) {
      const span = statement.span;
      if (span === undefined) return;
      if (error !== undefined) {
        // The driver's message can quote row values: keep only the SQLSTATE.
        const code = (error as { code?: unknown }).code;
        if (typeof code === "string") span.setAttribute(ATTR_DB_RESPONSE_STATUS_CODE, code);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    },
  };
}
