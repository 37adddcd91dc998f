import type { Knex } from "knex";
import { Gauge, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import { poolOf } from "../db/knex-internals.js";
import type { StatementObserver } from "../db/statements.js";

/**
 * dbMetrics exposes the Knex pool (read at scrape time, so an exhausted pool
 * shows up even when no call finishes) and observes SQL statement durations.
 * Names follow the OpenTelemetry database client conventions, in Prometheus form.
 */
export function dbMetrics(registry: Registry, db: Knex): StatementObserver {
  const pool = () => poolOf(db);
  new Gauge({
    name: "db_client_connection_count",
    help: "Connections in the Knex pool, by state: used (checked out) or idle.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const p = pool();
      this.set({ state: "used" }, p?.numUsed() ?? 0);
      this.set({ state: "idle" }, p?.numFree() ?? 0);
    },
  });
  new Gauge({
    name: "db_client_connection_pending_requests",
    help: "Callers waiting for a connection from the Knex pool.",
    registers: [registry],
    collect() {
      this.set(pool()?.numPendingAcquires() ?? 0);
    },
  });
  new Gauge({
    name: "db_client_connection_max",
    help: "Largest number of connections the Knex pool opens.",
    registers: [registry],
    collect() {
      this.set(pool()?.max ?? 0);
    },
  });
  const duration = new Histogram({
    name: "db_client_operation_duration_seconds",
    help: "Duration of SQL statements, from sending to the last row, by first keyword and outcome.",
    labelNames: ["db_operation_name", "outcome"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    end(statement, error) {
      const seconds = Number(process.hrtime.bigint() - statement.startedAt) / 1e9;
      duration.observe({ db_operation_name: statement.operation, outcome: error ? "error" : "ok" }, seconds);
    },
  };
}
