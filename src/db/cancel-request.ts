import net from "node:net";

/** CancelTarget is a pg connection as far as cancelling goes: where it connected and the key it was given. */
export interface CancelTarget {
  host: string;
  port: number;
  processID: number;
  secretKey: number;
}

const cancelRequestCode = 80877102;

/**
 * cancelRequest asks the server to cancel what `target` is running with the
 * wire protocol's CancelRequest (the session's process id and secret key,
 * sent on a connection of its own, as libpq's PQcancel does) rather than
 * `SELECT pg_cancel_backend(pid)`. Behind PgBouncer the process id a client
 * is given is PgBouncer's own, which pg_cancel_backend cannot find (or could
 * match an unrelated backend), while PgBouncer forwards a CancelRequest to
 * the server connection the client holds at that moment. It needs no pooled
 * connection and no login. It resolves once the server has closed the cancel
 * connection, i.e. handled the request, or after timeoutMs; it never rejects.
 */
export function cancelRequest(target: CancelTarget, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(cancelRequestCode, 4);
    packet.writeInt32BE(target.processID | 0, 8);
    packet.writeInt32BE(target.secretKey | 0, 12);
    const socket = target.host.startsWith("/")
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect(target.port, target.host);
    socket.setTimeout(timeoutMs, () => socket.destroy());
    // Like libpq: send, then wait for the server to close. Closing our side
    // first makes PgBouncer 1.18 see "client unexpected eof" and abort.
    socket.once("connect", () => socket.write(packet));
    socket.once("end", () => socket.destroy());
    socket.on("error", () => {});
    socket.once("close", () => resolve());
  });
}
