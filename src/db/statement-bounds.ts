import { currentCall } from "../call/scope.js";
import { cancelRequest } from "./cancel-request.js";
import { CallCancelled, DeadlineExceeded } from "./errors.js";
import { wrapQueryEntryPoint } from "./knex-internals.js";
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
  if (call.signal.aborted) throw new CallCancelled();
  const left = call.deadline === undefined ? undefined : call.deadline - Date.now();
  if (left !== undefined && left <= 0) throw new DeadlineExceeded();
  let cancelling: Promise<unknown> | undefined;
  const cancel = () => {
    cancelling ??= cancelRequest(connection);
  };
  const timer = left === undefined ? undefined : setTimeout(cancel, left);
  call.signal.addEventListener("abort", cancel);
  try {
    return await run();
  } finally {
    clearTimeout(timer);
    call.signal.removeEventListener("abort", cancel);
    await cancelling;
  }
}

/**
 * boundStatementsToCalls makes every statement Knex sends on behalf of a
 * call (queries and transactions; the service opens no cursors: exports read
 * in chunks) end when the call does. It wraps the Knex client's query entry
 * point once (Knex has no public hook that sees the connection a statement
 * runs on); outside a call (migrations, seeding) nothing changes. No
 * statement is added per call.
 */
export function boundStatementsToCalls(db: Parameters<typeof wrapQueryEntryPoint>[0]): void {
  wrapQueryEntryPoint(db, (query) => (connection, q) => bound(connection, () => query(connection, q)));
}
