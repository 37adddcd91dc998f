import type { EventEmitter } from "node:events";
import { currentCall } from "../call/scope.js";
import { cancelRequest } from "./cancel-request.js";
import { CallCancelled, DeadlineExceeded } from "./errors.js";
import { wrapStatementEntryPoints } from "./knex-internals.js";
import type { RawConnection } from "./knex-internals.js";

/**
 * bound runs one statement of the current call on `connection` so that it
 * ends with the call: when the deadline passes or the caller cancels, the
 * statement is cancelled in PostgreSQL (a protocol CancelRequest, which also
 * works through PgBouncer, where Knex's own cancelQuery, pg_cancel_backend of
 * the pid the client was told, finds nothing), so no orphaned work stays on
 * the server. The connection goes back to the pool only after an issued
 * cancel has been delivered; a cancel that reaches an idle backend is ignored
 * by PostgreSQL, so it cannot hit the next user of the connection.
 */
async function bound<T>(connection: RawConnection, run: () => Promise<T>, stream?: EventEmitter): Promise<T> {
  const call = currentCall();
  if (call === undefined) return run();
  if (call.signal.aborted) throw new CallCancelled();
  const left = call.deadline === undefined ? undefined : call.deadline - Date.now();
  if (left !== undefined && left <= 0) throw new DeadlineExceeded();
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
 * call (queries, transactions, cursors) end when the call does. It wraps the
 * Knex client's query and stream entry points once (Knex has no public hook
 * that sees the connection a statement runs on); outside a call (migrations,
 * seeding) nothing changes. No statement is added per call.
 */
export function boundStatementsToCalls(db: Parameters<typeof wrapStatementEntryPoints>[0]): void {
  wrapStatementEntryPoints(db, ({ query, stream }) => ({
    query: (connection, q) => bound(connection, () => query(connection, q)),
    stream: (connection, q, s, o) => bound(connection, () => stream(connection, q, s, o), s as EventEmitter),
  }));
}
