import assert from "node:assert/strict";

/**
 * leakPatterns are what must never reach a caller in a status message: our
 * SQL, a stack trace, a file path, or a driver's (pg, Knex, Node) own words.
 */
export const leakPatterns: Record<string, RegExp> = {
  sql: /\b(select\b[\s\S]*\bfrom|insert\s+into|update\b[\s\S]*\bset|delete\s+from|returning\s+\*|values\s*\()|\$\d+|"(users|posts|idempotency_keys|service_keys)"\./i,
  "stack trace": /\n\s+at\s|\bat\s+(async\s+)?[\w$.<>]+\s+\(|:\d+:\d+\)|\b\w*Error\b/,
  "file path": /node_modules|(\/[\w.@-]+){2,}|\b[\w-]+\.(ts|js|mjs|cjs|c):\d+|file:\/\//,
  "driver message":
    /duplicate key value|violates (unique|foreign key|check|not-null) constraint|invalid (byte sequence|input syntax)|relation "|column "|syntax error at or near|terminating connection|Connection terminated|not queryable|ECONN\w+|EPIPE|ETIMEDOUT|\bknex\b|pg-protocol|Timeout acquiring|database system is|DETAIL:|HINT:|SQLSTATE|premature EOF|invalid wire type|out of range for type/i,
};

/** leaksIn names the patterns that `message` matches (none, for a clean message). */
export function leaksIn(message: string): string[] {
  return Object.entries(leakPatterns)
    .filter(([, pattern]) => pattern.test(message))
    .map(([name]) => name);
}

/**
 * withoutEchoes drops the double-quoted parts of a message: where a caller's
 * own hostile text is echoed back ("unknown field \"select\""), it is the
 * caller's, not a leak. Drivers quote identifiers too, but the words around
 * them still give a leak away.
 */
export function withoutEchoes(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

/** assertNoLeaks fails listing every message that carries a leak, and why. */
export function assertNoLeaks(messages: Iterable<string>): void {
  const leaky = [...new Set(messages)]
    .map((message) => ({ message, leaks: leaksIn(message) }))
    .filter((m) => m.leaks.length > 0);
  assert.deepEqual(leaky, [], "status messages carry no SQL, stack, path or driver text");
}
