import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";

/** Tracing is the installed OpenTelemetry SDK; shutdown flushes the spans not yet exported. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * startTracing installs the OpenTelemetry SDK globally: a tracer provider, an
 * AsyncLocalStorage context manager and the W3C trace-context propagator. By
 * default spans are batched to the OTLP/HTTP (protobuf) exporter, which reads
 * `OTEL_EXPORTER_OTLP_ENDPOINT` and its companions itself; tests pass their
 * own processor. The service's code only uses `@opentelemetry/api`, so until
 * this runs every span is the API's no-op.
 */
export function startTracing(options: { spanProcessor?: SpanProcessor; env?: NodeJS.ProcessEnv } = {}): Tracing {
  const env = options.env ?? process.env;
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME || "blog-service" }),
    ),
    spanProcessors: [options.spanProcessor ?? new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
