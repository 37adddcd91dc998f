/** etagOf renders a row version as the etag clients echo back (AIP-154). */
export function etagOf(version: bigint): string {
  return `v${version}`;
}

/**
 * expectedVersion reads an etag from a request: undefined when none was sent
 * (unconditional write); an etag this service did not issue matches no
 * version, so the write is refused as stale.
 */
export function expectedVersion(etag: string): bigint | undefined {
  if (etag === "") return undefined;
  const match = /^v(\d{1,18})$/.exec(etag);
  return match ? BigInt(match[1]!) : -1n;
}
