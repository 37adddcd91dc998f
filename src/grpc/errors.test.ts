import assert from "node:assert/strict";
import { it } from "node:test";
import { status } from "@grpc/grpc-js";
import knex from "knex";
import { NoWritablePrimary } from "../db/errors.js";
import { ServiceError, notFound, toServiceError } from "./errors.js";

function pgError(code: string, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error('duplicate key value violates unique constraint "users_pkey" DETAIL: (id)=(1)'), {
    code,
    ...extra,
  });
}

it("passes ServiceErrors through untouched", () => {
  const error = notFound("user", 42n);
  assert.equal(toServiceError(error, assert.fail), error);
  assert.equal(error.message, "user 42 not found");
});

it("maps SQLSTATEs to codes with messages that carry no driver text", () => {
  const cases: [string, status][] = [
    ["23505", status.ALREADY_EXISTS],
    ["23503", status.FAILED_PRECONDITION],
    ["23514", status.INVALID_ARGUMENT],
    ["23502", status.INVALID_ARGUMENT],
    ["22001", status.INVALID_ARGUMENT],
    ["40001", status.ABORTED],
    ["57014", status.DEADLINE_EXCEEDED],
    ["08006", status.UNAVAILABLE],
    ["57P01", status.UNAVAILABLE],
    ["57P02", status.UNAVAILABLE],
    ["57P03", status.UNAVAILABLE],
    ["25006", status.UNAVAILABLE],
    ["ECONNREFUSED", status.UNAVAILABLE],
    ["ECONNRESET", status.UNAVAILABLE],
  ];
  for (const [code, expected] of cases) {
    const mapped = toServiceError(pgError(code, { constraint: "users_pkey" }), () => {});
    assert.equal(mapped.code, expected, code);
    assert.doesNotMatch(mapped.message, /duplicate key|DETAIL|\(id\)/, code);
  }
  assert.equal(
    toServiceError(pgError("23505", { constraint: "users_pkey" }), () => {}).message,
    "the request already exists (constraint users_pkey)",
  );
});

it("reads the SQLSTATE of errors Objection wraps", () => {
  const wrapped = Object.assign(new Error("wrapped"), { nativeError: pgError("23514"), constraint: "users_age_check" });
  const mapped = toServiceError(wrapped, () => {});
  assert.equal(mapped.code, status.INVALID_ARGUMENT);
  assert.equal(mapped.message, "the request violates a check constraint (constraint users_age_check)");
});

it("answers INTERNAL with a generic message for anything else, and logs the original", () => {
  const logged: unknown[] = [];
  const original = new TypeError("Cannot read properties of undefined (reading 'x') at /work/main/src/secret.ts:1");
  const mapped = toServiceError(original, (error) => logged.push(error));
  assert.ok(mapped instanceof ServiceError);
  assert.equal(mapped.code, status.INTERNAL);
  assert.equal(mapped.message, "internal error");
  assert.deepEqual(logged, [original]);
});

it("answers UNAVAILABLE for a pool timeout and for connections lost under a query", () => {
  const lost = [
    new knex.KnexTimeoutError("Knex: Timeout acquiring a connection. The pool is probably full."),
    new Error("Connection terminated unexpectedly"),
    new Error("SELECT COUNT(*) AS count FROM users - Connection terminated unexpectedly"),
    new Error("Client has encountered a connection error and is not queryable"),
    Object.assign(new Error("wrapped"), { nativeError: new Error("Connection terminated unexpectedly") }),
  ];
  for (const error of lost) {
    const logged: unknown[] = [];
    const mapped = toServiceError(error, (e) => logged.push(e));
    assert.equal(mapped.code, status.UNAVAILABLE, error.message);
    assert.equal(mapped.message, "the request could not reach the database; retry");
    assert.deepEqual(logged, [error]);
  }
  assert.equal(toServiceError(new Error("Connection reset by a bug"), () => {}).code, status.INTERNAL);
});

it("answers UNAVAILABLE, never INTERNAL, while no host of a multi-host DATABASE_URL takes writes", () => {
  const cases: [NoWritablePrimary, string][] = [
    [
      new NoWritablePrimary(["10.0.0.1:5432", "10.0.0.2:5432"], false),
      "the request could not reach the database; retry",
    ],
    [
      new NoWritablePrimary(["10.0.0.1:5432", "10.0.0.2:5432"], true),
      "the request reached a database that is no longer the primary; retry",
    ],
  ];
  for (const [error, message] of cases) {
    const mapped = toServiceError(error, () => {});
    assert.equal(mapped.code, status.UNAVAILABLE);
    assert.equal(mapped.message, message, "no host names reach the caller");
  }
});
