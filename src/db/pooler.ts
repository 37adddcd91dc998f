/** A pg client as far as telling a pooler from PostgreSQL goes. */
export interface KeyedClient {
  /** processID is the process id of the backend key the server gave at login (pg sets it; @types/pg does not list it). */
  processID: number;
  query(sql: string): Promise<{ rows: { pid?: unknown }[] }>;
}

/**
 * throughPooler tells whether client's connection goes through a connection
 * pooler (PgBouncer, ...) rather than to a PostgreSQL backend of its own: a
 * pooler hands its clients backend keys of its own, so the backend that
 * answers `pg_backend_pid()` is not the one the key names. One statement,
 * outside any transaction's own work.
 */
export async function throughPooler(client: KeyedClient): Promise<boolean> {
  const { rows } = await client.query("SELECT pg_backend_pid() AS pid");
  return rows[0]?.pid !== client.processID;
}
