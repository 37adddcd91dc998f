/**
 * epochMillis is the SQL of a millisecond timestamp column as milliseconds
 * since the epoch, a float8 that pg reads as a number (exact for the
 * `timestamp(3)` columns). For statements that return times by the thousand:
 * `new Date(number)` costs a fraction of pg's parse of timestamptz text
 * (postgres-date: a regular expression and a Date per value, about 0.5 µs),
 * and in JSON a number costs PostgreSQL less to write than ISO 8601 text.
 */
export function epochMillis(column: string): string {
  return `round(date_part('epoch', ${column}) * 1000)`;
}
