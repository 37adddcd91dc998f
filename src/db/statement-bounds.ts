import { currentCall } from "../call/scope.js";
import { cancelRequest } from "./cancel-request.js";
import { CallCancelled, DeadlineExceeded } from "./errors.js";
import { wrapDriverQuery } from "./knex-internals.js";
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
async function bound<T>(connection: RawConnection, run: () => Promise<T>): Promise<T> {
  const call = currentCall();
  if (call === undefined) return run();
  if (call.cancellation.aborted) throw new CallCancelled();
  const left = call.deadline === undefined ? undefined : call.deadline - Date.now();
  if (left !== undefined && left <= 0) throw new DeadlineExceeded();
  let cancelling: Promise<unknown> | undefined;
  const cancel = () => {
    cancelling ??= cancelRequest(connection);
  };
  const timer = left === undefined ? undefined : setTimeout(cancel, left);
  const stopListening = call.cancellation.onAbort(cancel);
  try {
    return await run();
  } finally {
    clearTimeout(timer);
    stopListening();
    await cancelling;
  }
}

/**
 * Transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) is never refused
 * or cancelled: a ROLLBACK refused because the call had ended would hand the
 * connection back to the pool inside a transaction. The statements between
 * them are bound, so a call that ends cancels the one running and Knex then
 * rolls the transaction back.
 */
const transactionControl = /^\s*(begin|commit|rollback|savepoint|release|set\s+transaction)\b/i;

/**
 * boundStatementsToCalls makes every statement Knex sends on behalf of a
 * call (queries, and the statements inside transactions; the service opens
 * no cursors: exports read in chunks) end when the call does. It wraps Knex's
 * driver step (Knex has no public hook that sees the connection a statement
 * runs on), which transactions reach too; outside a call (migrations,
 * seeding) nothing changes. No statement is added per call.
 */
export function boundStatementsToCalls(db: Parameters<typeof wrapDriverQuery>[0]): void {
  wrapDriverQuery(
    db,
    (query) => (connection, statement) =>
      transactionControl.test(statement.sql)
        ? query(connection, statement)
        : bound(connection, () => query(connection, statement)),
  );
}
