/** A field of a request that could not be read, and why. */
export interface InputViolation {
  field: string;
  description: string;
}

/**
 * InvalidInput is what the list parsers (filter, order_by, page_token) throw
 * for input a caller must change: a reason (UPPER_SNAKE_CASE, e.g.
 * INVALID_FILTER) and the offending field. The transport decides the status.
 */
export class InvalidInput extends Error {
  override name = "InvalidInput";
  constructor(
    readonly reason: string,
    readonly violation: InputViolation,
  ) {
    super(`${violation.field}: ${violation.description}`);
  }
}
