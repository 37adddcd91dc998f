import type { Span } from "@opentelemetry/api";
import type { Knex } from "knex";
import { currentCall } from "../call/scope.js";
import type { CallScope } from "../call/scope.js";
import { queryIdOf } from "./knex-internals.js";

/** Statement is one SQL statement Knex sent, as the observers see it. */
export interface Statement {
  /** sql has placeholders; the values are in bindings. */
  readonly sql: string;
  readonly bindings: readonly unknown[] | undefined;
  /** operation is the statement's first keyword (SELECT, INSERT, BEGIN, ...), or OTHER. */
  readonly operation: string;
  /** call is the RPC that ran it; undefined for work outside calls (migrations, seeding). */
  readonly call: CallScope | undefined;
  readonly startedAt: bigint;
  /** span is set by the tracing observer while the statement runs. */
  span?: Span;
}

/** StatementObserver watches SQL statements: metrics, spans, the SQL log. */
export interface StatementObserver {
  start?(statement: Statement): void;
  end(statement: Statement, error: Error | undefined): void;
}

interface QueryEvent {
  sql: string;
  bindings?: readonly unknown[];
}

const operations = new Set(["SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK"]);

function operationOf(sql: string): string {
  const word = /^\s*([a-z]+)/i.exec(sql)?.[1]?.toUpperCase() ?? "";
  return operations.has(word) ? word : "OTHER";
}

/**
 * observeStatements follows every statement Knex sends from its `query` event
 * to `query-response` or `query-error`. Knex emits `query` synchronously in
 * the caller's async context, so the statement is counted for (and tied to)
 * the call that ran it. Returns a function that stops observing.
 */
export function observeStatements(db: Knex, observers: readonly StatementObserver[]): () => void {
  const running = new Map<string, Statement>();
  const onQuery = (q: QueryEvent) => {
    const call = currentCall();
    const statement: Statement = {
      sql: q.sql,
      bindings: q.bindings,
      operation: operationOf(q.sql),
      call,
      startedAt: process.hrtime.bigint(),
    };
    running.set(queryIdOf(q), statement);
    for (const o of observers) o.start?.(statement);
  };
  const finish = (q: QueryEvent, error: Error | undefined) => {
    const id = queryIdOf(q);
    const statement = running.get(id);
    if (statement === undefined) return;
    running.delete(id);
    for (const o of observers) o.end(statement, error);
  };
  const onResponse = (_response: unknown, q: QueryEvent) => finish(q, undefined);
  const onError = (error: Error, q: QueryEvent) => finish(q, error);
  db.on("query", onQuery);
  db.on("query-response", onResponse);
  db.on("query-error", onError);
  return () => {
    db.off("query", onQuery);
    db.off("query-response", onResponse);
    db.off("query-error", onError);
    running.clear();
  };
}
