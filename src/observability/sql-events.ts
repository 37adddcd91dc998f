import type { Span } from "@opentelemetry/api";
import type { Knex } from "knex";
import { currentCall } from "./call-scope.js";
import type { CallScope } from "./call-scope.js";

/** Statement is one SQL statement Knex sent, as the observers see it. */
export interface Statement {
  /** sql has placeholders, never bindings. */
  readonly sql: string;
  /** operation is the statement's first keyword (SELECT, INSERT, BEGIN, ...), or OTHER. */
  readonly operation: string;
  /** call is the RPC that ran it; undefined for work outside calls (migrations, seeding). */
  readonly call: CallScope | undefined;
  readonly startedAt: bigint;
  /** span is set by the tracing observer while the statement runs. */
  span?: Span;
}

/** StatementObserver watches SQL statements: metrics, spans. */
export interface StatementObserver {
  start?(statement: Statement): void;
  end(statement: Statement, error: Error | undefined): void;
}

interface QueryEvent {
  sql: string;
  __knexQueryUid: string;
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
    if (call !== undefined) call.sqlStatements++;
    const statement: Statement = {
      sql: q.sql,
      operation: operationOf(q.sql),
      call,
      startedAt: process.hrtime.bigint(),
    };
    running.set(q.__knexQueryUid, statement);
    for (const o of observers) o.start?.(statement);
  };
  const finish = (q: QueryEvent, error: Error | undefined) => {
    const statement = running.get(q.__knexQueryUid);
    if (statement === undefined) return;
    running.delete(q.__knexQueryUid);
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
