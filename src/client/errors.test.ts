import assert from "node:assert/strict";
import { it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack, TimestampSchema, timestampNow } from "@bufbuild/protobuf/wkt";
import type { Any } from "@bufbuild/protobuf/wkt";
import { Metadata, status } from "@grpc/grpc-js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { BlogClientError, decodeErrorDetails, statusDetailsKey, toBlogClientError } from "./errors.js";

function trailersWith(details: Any[]): Metadata {
  const trailers = new Metadata();
  const rpcStatus = create(StatusSchema, { code: status.INVALID_ARGUMENT, message: "bad", details });
  trailers.set(statusDetailsKey, Buffer.from(toBinary(StatusSchema, rpcStatus)));
  return trailers;
}

it("decodes the google.rpc error details of the grpc-status-details-bin trailer", () => {
  const trailers = trailersWith([
    anyPack(
      ErrorInfoSchema,
      create(ErrorInfoSchema, { reason: "NAME_TOO_LONG", domain: "blog.v1", metadata: { max: "200" } }),
    ),
    anyPack(
      BadRequestSchema,
      create(BadRequestSchema, { fieldViolations: [{ field: "user.name", description: "too long" }] }),
    ),
  ]);
  const error = toBlogClientError(
    Object.assign(new Error("3 INVALID_ARGUMENT: bad"), {
      code: status.INVALID_ARGUMENT,
      details: "bad",
      metadata: trailers,
    }),
  );
  assert.ok(error instanceof BlogClientError);
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.equal(error.details, "bad");
  assert.equal(error.message, "INVALID_ARGUMENT: bad");
  assert.equal(error.metadata, trailers);
  assert.equal(error.errorDetails.length, 2);
  assert.equal(error.errorInfo?.reason, "NAME_TOO_LONG");
  assert.deepEqual(error.errorInfo?.metadata, { max: "200" });
  assert.equal(error.badRequest?.fieldViolations[0]?.field, "user.name");
  assert.equal(error.resourceInfo, undefined);
  assert.equal(error.findDetail(RetryInfoSchema), undefined);
});

it("has no details when the trailer is absent, unparsable or of other types", () => {
  assert.deepEqual(decodeErrorDetails(new Metadata()), []);
  const garbage = new Metadata();
  garbage.set(statusDetailsKey, Buffer.from([0xff, 0xff, 0xff]));
  assert.deepEqual(decodeErrorDetails(garbage), []);
  const mixed = trailersWith([
    anyPack(TimestampSchema, timestampNow()),
    anyPack(ResourceInfoSchema, create(ResourceInfoSchema, { resourceType: "blog.v1.User", resourceName: "users/7" })),
  ]);
  const [only, ...rest] = decodeErrorDetails(mixed);
  assert.equal(rest.length, 0, "a type outside error_details.proto is skipped");
  assert.equal(new BlogClientError(status.NOT_FOUND, "user 7 not found", mixed).resourceInfo?.resourceName, "users/7");
  assert.equal(only?.$typeName, "google.rpc.ResourceInfo");
});

it("wraps anything that is not a gRPC status as UNKNOWN and keeps the cause", () => {
  const cause = new TypeError("boom");
  const error = toBlogClientError(cause);
  assert.equal(error.code, status.UNKNOWN);
  assert.equal(error.details, "boom");
  assert.equal(error.cause, cause);
  assert.deepEqual(error.errorDetails, []);
  assert.equal(toBlogClientError(error), error, "a BlogClientError is not wrapped twice");
});
