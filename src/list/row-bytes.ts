/** rowOverheadBytes is what a row costs in a message beyond its strings (tags, lengths, ids, times), rounded up. */
export const rowOverheadBytes = 96;

/** utf8Bytes bounds from above what a row with these strings costs in a message. */
export function utf8Bytes(...texts: string[]): number {
  let bytes = rowOverheadBytes;
  for (const text of texts) bytes += Buffer.byteLength(text, "utf8");
  return bytes;
}

/**
 * rowBytesSql is utf8Bytes in SQL over a row's text columns, for statements
 * that read within a byte budget; `octet_length` of a TOASTed value reads its
 * stored size without fetching it.
 */
export function rowBytesSql(columns: readonly string[]): { sql: string; bindings: string[] } {
  return {
    sql: `(${[...columns.map(() => "octet_length(??)"), rowOverheadBytes].join(" + ")})`,
    bindings: [...columns],
  };
}
