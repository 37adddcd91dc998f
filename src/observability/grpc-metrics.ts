import type { DescService } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import type { GrpcType } from "./call-scope.js";
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
  for (const service of services) {
    for (const method of service.methods) {
      const type: GrpcType = method.methodKind === "server_streaming" ? "server_stream" : "unary";
      const labels = { grpc_type: type, grpc_service: service.typeName, grpc_method: method.name };
      for (const counter of [started, received, sent]) counter.inc(labels, 0);
      for (const grpc_code of codeNames) handled.inc({ ...labels, grpc_code }, 0);
      handling.zero(labels);
    }
  }
  const labelsOf = (scope: { type: GrpcType; service: string; method: string }) => ({
    grpc_type: scope.type,
    grpc_service: scope.service,
    grpc_method: scope.method,
  });
  return {
    start(scope) {
      const labels = labelsOf(scope);
      started.inc(labels);
      received.inc(labels); // unary and server-streaming calls both take exactly one request
    },
    sent(scope) {
      sent.inc(labelsOf(scope));
    },
    end(scope, code) {
      const labels = labelsOf(scope);
      handled.inc({ ...labels, grpc_code: status[code] });
      handling.observe(labels, Number(process.hrtime.bigint() - scope.startedAt) / 1e9);
    },
  };
}
