// Metadata keys the service and its clients agree on: the server sets them,
// the SDK (src/client) reads and sends them back.

/** The trailer gRPC's rich error model (google.rpc.Status) travels in. */
export const statusDetailsKey = "grpc-status-details-bin";

/** The metadata key a caller (or a proxy in front of us) may set to name its request; echoed as a trailer. */
export const requestIdKey = "x-request-id";

/**
 * minLsnKey is the metadata key of read-your-writes: a write answers with the
 * primary's WAL position after its commit in this trailer, and a read that
 * sends it back (request metadata) is served only by a database that has
 * replayed at least that far. The value is PostgreSQL's text form of a
 * pg_lsn, e.g. `0/16B3748` (see lsn.ts).
 */
export const minLsnKey = "x-blog-min-lsn";
