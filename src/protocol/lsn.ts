import { minLsnKey } from "./keys.js";

const lsnText = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i;

/** parseLsn reads a pg_lsn in its text form (`0/16B3748`) as a number that orders like WAL positions. */
export function parseLsn(text: unknown): bigint | undefined {
  if (typeof text !== "string") return undefined;
  const match = lsnText.exec(text);
  if (match === null) return undefined;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** formatLsn writes a WAL position in PostgreSQL's text form, which `::pg_lsn` reads back. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** minLsnOf is the highest well-formed position under minLsnKey in metadata; malformed values are ignored. */
export function minLsnOf(metadata: { get(key: string): unknown[] }): bigint | undefined {
  let highest: bigint | undefined;
  for (const value of metadata.get(minLsnKey)) {
    const lsn = parseLsn(value);
    if (lsn !== undefined && (highest === undefined || lsn > highest)) highest = lsn;
  }
  return highest;
}
