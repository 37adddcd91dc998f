/**
 * WriteResult is the outcome of a conditional write (AIP-154 etags): done, no
 * such row, or the row exists at another version.
 */
export type WriteResult<T> = { kind: "done"; value: T } | { kind: "missing" } | { kind: "stale" };
