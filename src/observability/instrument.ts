import type { DescService } from "@bufbuild/protobuf";
import type { Knex } from "knex";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { Middleware } from "../grpc/adapter.js";
import type { Logger } from "../log.js";
import { logCalls } from "./call-log.js";
import { traceCalls, traceStatements } from "./call-tracing.js";
import { dbMetrics } from "./db-metrics.js";
import { grpcMetrics } from "./grpc-metrics.js";
import { observeCalls } from "./observe.js";
import { observeStatements } from "../db/statements.js";
import type { StatementObserver } from "../db/statements.js";

/** countStatements counts each statement for the call that ran it (the call log's sqlStatements). */
const countStatements: StatementObserver = {
  start(statement) {
    if (statement.call !== undefined) statement.call.counters.sqlStatements++;
  },
  end() {},
};

/** Instrumentation is what a server needs to be observable: a middleware and its metrics. */
export interface Instrumentation {
  /** middleware runs each call in its scope and logs, counts and traces it. */
  readonly middleware: Middleware;
  /** registry holds this server's metrics only, so several servers can share a process. */
  readonly registry: Registry;
  /** close stops listening to the database's statements. */
  close(): void;
}

/**
 * instrument wires logs, Prometheus metrics and OpenTelemetry spans for the
 * calls to `services` and the statements sent through `db` and the read
 * replicas (the pool gauges are db's).
 */
export function instrument(deps: {
  db: Knex;
  replicas?: readonly Knex[];
  log: Logger;
  services: readonly DescService[];
}): Instrumentation {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const middleware = observeCalls([traceCalls(), grpcMetrics(registry, deps.services), logCalls(deps.log)]);
  const statementObservers = [countStatements, traceStatements(), dbMetrics(registry, deps.db)];
  const stops = [deps.db, ...(deps.replicas ?? [])].map((db) => observeStatements(db, statementObservers));
  return { middleware, registry, close: () => stops.forEach((stop) => stop()) };
}
