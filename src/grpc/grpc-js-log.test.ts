import assert from "node:assert/strict";
import { it } from "node:test";
import { redactGrpcJsMessage } from "./grpc-js-log.js";

it("keeps a refused metadata entry's key and drops its value", () => {
  const line =
    'Failed to add metadata entry authorization: Bearer sec\tret. Metadata string value "Bearer sec\tret" contains illegal characters. For more information see https://github.com/grpc/grpc-node/issues/1173';
  assert.equal(redactGrpcJsMessage(line), "Failed to add metadata entry authorization (its value is not logged)");
  assert.equal(redactGrpcJsMessage("Server listening"), "Server listening");
});
