import { AsyncLocalStorage } from "node:async_hooks";
import type { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import type { Knex } from "knex";
import type { CallContext, Middleware } from "../grpc/adapter.js";
import { ServiceError, errorInfo } from "../grpc/errors.js";
import { runWithin } from "../grpc/run-within.js";
import { cancelRequest } from "./cancel-request.js";
import type { CancelTarget } from "./cancel-request.js";

/** What the database layer knows of the gRPC call it is working for. */
interface CallBounds {
  deadline: number | undefined;
  signal: AbortSignal;
}

const calls = new AsyncLocalStorage<CallBounds>();

/** A pg connection as Knex hands it to its client: where it connected and its cancel key. */
type Connection = CancelTarget;

function deadlineExceeded(): ServiceError {
  return new ServiceError(status.DEADLINE_EXCEEDED, "the deadline passed before the database answered", [
    errorInfo("DEADLINE_EXCEEDED"),
  ]);
}

/**
 * bound runs one statement of the current call on `connection` so that it
 * ends with the call: when the deadline passes or the client cancels, the
 * statement is cancelled in PostgreSQL (a protocol CancelRequest, which also
 * works through PgBouncer, where Knex's own cancelQuery, pg_cancel_backend of
 * the pid the client was told, finds nothing), so no orphaned work stays on
 * the server. The connection goes back to the pool only after an issued
 * cancel has been delivered; a cancel that reaches an idle backend is ignored
 * by PostgreSQL, so it cannot hit the next user of the connection.
 */
async function bound<T>(connection: Connection, run: () => Promise<T>, stream?: EventEmitter): Promise<T> {
  const call = calls.getStore();
  if (call === undefined) return run();
  if (call.signal.aborted) throw new ServiceError(status.CANCELLED, "the call was cancelled");
  const left = call.deadline === undefined ? undefined : call.deadline - Date.now();
  if (left !== undefined && left <= 0) throw deadlineExceeded();
  let cancelling: Promise<unknown> | undefined;
  const cancel = () => {
    cancelling ??= cancelRequest(connection);
  };
  const timer = left === undefined ? undefined : setTimeout(cancel, left);
  call.signal.addEventListener("abort", cancel);
  const release = () => {
    clearTimeout(timer);
    call.signal.removeEventListener("abort", cancel);
  };
  // Knex gives a cursor's connection back when its stream closes, but the
  // promise of client.stream does not settle when the reader stops early:
  // stop watching the connection as soon as the stream closes.
  stream?.once("close", release);
  try {
    return await run();
  } finally {
    release();
    stream?.off("close", release);
    await cancelling;
  }
}

/**
 * boundStatementsToCalls makes every statement Knex sends on behalf of a
 * gRPC call (queries, transactions, cursors) end when the call does. It
 * wraps the Knex client's query and stream entry points once; outside a call
 * (migrations, seeding) nothing changes. No statement is added per call.
 */
export function boundStatementsToCalls(db: Knex): void {
  const client = db.client as Knex.Client & {
    query(connection: Connection, query: unknown): Promise<unknown>;
    stream(connection: Connection, query: unknown, stream: unknown, options: unknown): Promise<unknown>;
  };
  const query = client.query.bind(client);
  const stream = client.stream.bind(client);
  client.query = (connection, q) => bound(connection, () => query(connection, q));
  client.stream = (connection, q, s, o) => bound(connection, () => stream(connection, q, s, o), s as EventEmitter);
}

/**
 * unbound runs work whose statements serve several calls at once (a batch):
 * no single caller's deadline or cancel may end them.
 */
export function unbound<T>(work: () => T): T {
  return calls.exit(work);
}

/** callDeadlines makes a call's deadline and cancellation reach its SQL. */
export const callDeadlines: Middleware = (next) => (request, context: CallContext) => {
  const bounds = { deadline: context.deadline?.getTime(), signal: context.signal };
  return runWithin(calls, bounds, () => next(request, context));
};
