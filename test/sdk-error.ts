import assert from "node:assert/strict";
import { BlogClientError } from "../src/client/index.js";

/** sdkError asserts that a client SDK call failed and returns its BlogClientError. */
export async function sdkError(call: Promise<unknown>): Promise<BlogClientError> {
  const error = await call.then(
    () => assert.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof BlogClientError, String(error));
  return error;
}
