import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createRegistry, fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import type { Message } from "@bufbuild/protobuf";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import type { BadRequest, ErrorInfo, ResourceInfo } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

const registry = createRegistry(file_google_rpc_error_details);
let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(() => env.close());

/** details decodes the google.rpc.Status trailer of a failed call. */
async function details(call: Promise<unknown>) {
  const error = await grpcError(call);
  const [bin] = error.metadata.get("grpc-status-details-bin");
  assert.ok(bin instanceof Buffer, "every error carries grpc-status-details-bin");
  const rich = fromBinary(StatusSchema, bin);
  assert.equal(rich.code, error.code);
  assert.equal(rich.message, error.details);
  const unpacked = rich.details.map((any) => anyUnpack(any, registry) as Message);
  const find = <T extends Message>(type: string) => unpacked.find((m) => m.$typeName === type) as T | undefined;
  return {
    error,
    errorInfo: find<ErrorInfo>("google.rpc.ErrorInfo"),
    badRequest: find<BadRequest>("google.rpc.BadRequest"),
    resourceInfo: find<ResourceInfo>("google.rpc.ResourceInfo"),
  };
}

it("validation failures carry ErrorInfo and one BadRequest listing every violation", async () => {
  const { errorInfo, badRequest } = await details(env.users.createUser({ user: { name: "", age: 999 } }));
  assert.equal(errorInfo?.reason, "INVALID_FIELDS");
  assert.equal(errorInfo?.domain, "blog.v1");
  assert.deepEqual(
    badRequest?.fieldViolations.map((v) => [v.field, v.reason]),
    [
      ["user.name", "user.name.trimmed_length"],
      ["user.age", "int32.gte_lte"],
    ],
  );
  assert.match(badRequest?.fieldViolations[0]?.description ?? "", /must be 1 to 200 characters/);
});

it("NOT_FOUND carries the id in ErrorInfo and the resource in ResourceInfo", async () => {
  const { error, errorInfo, resourceInfo } = await details(env.users.getUser({ id: 4242n }));
  assert.equal(error.code, status.NOT_FOUND);
  assert.equal(errorInfo?.reason, "USER_NOT_FOUND");
  assert.deepEqual(errorInfo?.metadata, { id: "4242" });
  assert.equal(resourceInfo?.resourceType, "blog.v1.User");
  assert.equal(resourceInfo?.resourceName, "users/4242");
});

it("filter, page token, etag and request_id errors have their own reasons", async () => {
  assert.equal((await details(env.users.listUsers({ filter: "age >" }))).errorInfo?.reason, "INVALID_FILTER");
  assert.equal((await details(env.users.listUsers({ orderBy: "nope" }))).errorInfo?.reason, "INVALID_ORDER_BY");
  assert.equal((await details(env.users.listUsers({ pageToken: "abc" }))).errorInfo?.reason, "INVALID_PAGE_TOKEN");
  const { user } = await env.users.createUser({ user: { name: "E", age: 1 } });
  const stale = await details(env.users.deleteUser({ id: user!.id, etag: "v999" }));
  assert.equal(stale.error.code, status.FAILED_PRECONDITION);
  assert.equal(stale.errorInfo?.reason, "ETAG_MISMATCH");
  const missing = await details(env.users.batchGetUsers({ ids: [user!.id, 777n] }));
  assert.deepEqual(missing.errorInfo?.metadata, { ids: "777" });
});

it("database constraint errors name the constraint, never the SQL", async () => {
  // Validation mirrors every constraint of the schema, so the test adds one it cannot see.
  await env.db.raw("ALTER TABLE users ADD CONSTRAINT users_test_check CHECK (name <> 'Refused') NOT VALID");
  try {
    const { error, errorInfo } = await details(env.users.createUser({ user: { name: "Refused", age: 1 } }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(errorInfo?.reason, "CHECK_VIOLATION");
    assert.deepEqual(errorInfo?.metadata, { constraint: "users_test_check" });
    assert.doesNotMatch(error.details, /insert|select|"users"/i);
  } finally {
    await env.db.raw("ALTER TABLE users DROP CONSTRAINT users_test_check");
  }
});

it("a NOT_FOUND for hundreds of missing ids names the first 20 and counts the rest", async () => {
  const ids = Array.from({ length: 400 }, (_, i) => 9_000_000_000_000_000_000n + BigInt(i));
  const missing = await details(env.users.batchGetUsers({ ids }));
  assert.equal(missing.error.code, status.NOT_FOUND);
  assert.deepEqual(missing.errorInfo?.metadata, { ids: ids.slice(0, 20).join(","), more: "380" });
  assert.equal(missing.error.details, `users ${ids.slice(0, 20).join(", ")} not found (and 380 more)`);
});

it("refuses, before building it, a reply over the send limit: one id a thousand times with view FULL", async () => {
  const { user } = await env.users.createUser({ user: { name: "Amplified", age: 1 } });
  const requests = Array.from({ length: 10 }, (_, i) => ({
    post: { userId: user!.id, title: `t${i}`, content: "x".repeat(1000) },
  }));
  await env.posts.batchCreatePosts({ userId: user!.id, requests });
  const ids = Array.from({ length: 1000 }, () => user!.id);
  const refused = await details(env.users.batchGetUsers({ ids, view: UserView.FULL }));
  assert.equal(refused.error.code, status.RESOURCE_EXHAUSTED);
  assert.equal(refused.errorInfo?.reason, "REPLY_TOO_LARGE");
  assert.match(
    refused.error.details,
    /^the reply would take about 1\d\.\d MiB, over the 4\.0 MiB a message may carry; ask for fewer or distinct ids, or view BASIC$/,
  );
  // The same ids without the posts fit, and so does one copy with them.
  assert.equal((await env.users.batchGetUsers({ ids, view: UserView.BASIC })).users.length, 1000);
  assert.equal((await env.users.batchGetUsers({ ids: [user!.id], view: UserView.FULL })).users[0]?.posts.length, 10);
});
