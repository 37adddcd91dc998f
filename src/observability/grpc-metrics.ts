import type { DescService } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import type { CallType } from "../call/scope.js";
import type { CallObserver } from "./observe.js";

const methodLabels = ["grpc_type", "grpc_service", "grpc_method"] as const;

/** Every status code name, as go-grpc-prometheus writes them in `grpc_code`. */
const codeNames = Object.values(status).filter((v): v is string => typeof v === "string");

/**
 * grpcMetrics records the go-grpc-prometheus server metrics, so dashboards and
 * alerts written for Go services work unchanged. Series for every method (and
 * every code of `grpc_server_handled_total`) exist from the start at zero, as
 * go-grpc-prometheus's InitializeMetrics does, so `rate()` sees the first call.
 */
export function grpcMetrics(registry: Registry, services: readonly DescService[]): CallObserver {
  const registers = [registry];
  const started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: methodLabels,
    registers,
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...methodLabels, "grpc_code"],
    registers,
  });
  const handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: methodLabels,
    registers,
  });
  const received = new Counter({
    name: "grpc_server_msg_received_total",
    help: "Total number of RPC stream messages received on the server.",
    labelNames: methodLabels,
    registers,
  });
  const sent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: methodLabels,
    registers,
  });
  // Label children are bound once per method (and code): looking series up by
  // label objects on every call costs more than the call's own bookkeeping.
  const perMethod = new Map<string, ReturnType<typeof bind>>();
  function bind(type: CallType, service: string, method: string) {
    const labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    return {
      started: started.labels(labels),
      received: received.labels(labels),
      sent: sent.labels(labels),
      handling: handling.labels(labels),
      handled: new Map(codeNames.map((grpc_code) => [grpc_code, handled.labels({ ...labels, grpc_code })])),
    };
  }
  for (const service of services) {
    for (const method of service.methods) {
      const type: CallType = method.methodKind === "server_streaming" ? "server_stream" : "unary";
      const children = bind(type, service.typeName, method.name);
      perMethod.set(`${service.typeName}/${method.name}`, children);
      for (const counter of [children.started, children.received, children.sent]) counter.inc(0);
      for (const counter of children.handled.values()) counter.inc(0);
      handling.zero({ grpc_type: type, grpc_service: service.typeName, grpc_method: method.name });
    }
  }
  const of = (scope: { type: CallType; service: string; method: string }) => {
    const key = `${scope.service}/${scope.method}`;
    let children = perMethod.get(key);
    if (children === undefined) perMethod.set(key, (children = bind(scope.type, scope.service, scope.method)));
    return children;
  };
  return {
    start(scope) {
      const m = of(scope);
      m.started.inc();
      m.received.inc(); // unary and server-streaming calls both take exactly one request
    },
    sent(scope) {
      of(scope).sent.inc();
    },
    end(scope, code) {
      const m = of(scope);
      m.handled.get(status[code])?.inc();
      m.handling.observe(Number(process.hrtime.bigint() - scope.startedAt) / 1e9);
    },
  };
}
