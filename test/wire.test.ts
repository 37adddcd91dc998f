// Bytes that are not a request: malformed protobuf on the wire gets
// INVALID_ARGUMENT, a message over the size limit RESOURCE_EXHAUSTED, and the
// server goes on serving everyone else.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Client, Metadata, credentials, status } from "@grpc/grpc-js";
import type { ServiceError as GrpcError } from "@grpc/grpc-js";
import fc from "fast-check";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { serverOptions } from "../src/grpc/server-options.js";
import { startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";
import { assertNoLeaks } from "./leaks.js";
import { grpcFrame, rawGrpcCall } from "./raw-http2.js";

const seed = Number(process.env.FC_SEED ?? 20261125);

let env: TestEnv;
let raw: Client;
const messages: string[] = [];
before(async () => {
  env = await startTestEnv();
  raw = new Client(env.address, credentials.createInsecure());
});
after(async () => {
  raw.close();
  await env.close();
});

const identity = (bytes: Buffer) => bytes;
const deadline = () => Date.now() + 10_000;

/** unary sends `bytes` as the request of `path` and resolves with the error or the response bytes. */
function unary(path: string, bytes: Buffer): Promise<GrpcError | Buffer> {
  return new Promise((resolve) => {
    raw.makeUnaryRequest(path, identity, identity, bytes, new Metadata(), { deadline: deadline() }, (error, value) =>
      resolve(error ?? value!),
    );
  });
}

/** stream sends `bytes` to a server-streaming `path` and resolves with how the stream ended. */
function stream(path: string, bytes: Buffer): Promise<GrpcError | "OK"> {
  return new Promise((resolve) => {
    const call = raw.makeServerStreamRequest(path, identity, identity, bytes, new Metadata(), { deadline: deadline() });
    call.on("data", () => {});
    call.on("error", (error: GrpcError) => resolve(error));
    call.on("end", () => resolve("OK"));
  });
}

function isStatus(outcome: GrpcError | Buffer | "OK"): outcome is GrpcError {
  return typeof outcome === "object" && !Buffer.isBuffer(outcome);
}

function failure(outcome: GrpcError | Buffer | "OK"): GrpcError {
  if (!isStatus(outcome)) assert.fail("expected the call to fail");
  messages.push(outcome.details);
  return outcome;
}

const malformed: [string, number[]][] = [
  ["a length past the end of the message", [0x0a, 0x05, 0x01]],
  ["a varint longer than 10 bytes", [0x08, ...Array<number>(11).fill(0xff)]],
  ["wire type 7, which does not exist", [0x0f]],
  ["a nested message that is itself malformed", [0x0a, 0x02, 0xff, 0xff]],
  ["a field number of 0", [0x00, 0x01]],
];

describe("malformed protobuf on the wire", () => {
  for (const [what, bytes] of malformed) {
    it(`is INVALID_ARGUMENT: ${what}`, async () => {
      const error = failure(await unary("/blog.v1.UserService/CreateUser", Buffer.from(bytes)));
      assert.equal(error.code, status.INVALID_ARGUMENT, `${status[error.code]}: ${error.details}`);
      assert.equal(error.details, "the request is not a valid blog.v1.CreateUserRequest message");
    });
  }

  it("is INVALID_ARGUMENT for a server-streaming method too", async () => {
    const error = failure(await stream("/blog.v1.UserService/ExportUsers", Buffer.from([0x0a, 0x05, 0x01])));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "the request is not a valid blog.v1.ExportUsersRequest message");
  });

  it("is INVALID_ARGUMENT for a string that is not UTF-8 (proto3 strings must be)", async () => {
    // CreateUserRequest{user: User{name: <2 bytes>, age: 5}}: C3 A9 is "é", C3 28 is not UTF-8.
    const request = (name: number[]) => Buffer.from([0x0a, 0x06, 0x12, 0x02, ...name, 0x18, 0x05]);
    const created = await unary("/blog.v1.UserService/CreateUser", request([0xc3, 0xa9]));
    assert.ok(!isStatus(created), "the well-formed twin is created");
    const error = failure(await unary("/blog.v1.UserService/CreateUser", request([0xc3, 0x28])));
    assert.equal(error.code, status.INVALID_ARGUMENT, `${status[error.code]}: ${error.details}`);
  });

  it("random bytes to any method never get INTERNAL or UNKNOWN", async () => {
    const methods = [...UserService.methods, ...PostService.methods];
    const bad = new Set([status.INTERNAL, status.UNKNOWN, status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.uint8Array({ maxLength: 64 }), async (method, bytes) => {
        const path = `/${method.parent.typeName}/${method.name}`;
        const call = method.methodKind === "server_streaming" ? stream : unary;
        const outcome = await call(path, Buffer.from(bytes));
        if (!isStatus(outcome)) return;
        messages.push(outcome.details);
        assert.ok(!bad.has(outcome.code), `${path}: ${status[outcome.code]}: ${outcome.details}`);
      }),
      { seed, numRuns: 200 },
    );
  });
});

describe("a message over the size limit", () => {
  const limit = serverOptions["grpc.max_receive_message_length"];

  it("is RESOURCE_EXHAUSTED, while other clients go on being served", async () => {
    const other = await env.users.createUser({ user: { name: "Bystander", age: 30 } });
    const [oversized, meanwhile] = await Promise.all([
      unary("/blog.v1.UserService/CreateUser", Buffer.alloc(limit + 1, 0x0a)),
      env.users.getUser({ id: other.user!.id }),
    ]);
    const error = failure(oversized);
    assert.equal(error.code, status.RESOURCE_EXHAUSTED, `${status[error.code]}: ${error.details}`);
    assert.equal(error.details, `Received message larger than max (${limit + 1} vs ${limit})`);
    assert.equal(meanwhile.user?.name, "Bystander");
  });

  it("at exactly the limit it is read (and then refused as malformed, not as too large)", async () => {
    const error = failure(await unary("/blog.v1.UserService/CreateUser", Buffer.alloc(limit, 0x0a)));
    assert.equal(error.code, status.INVALID_ARGUMENT);
  });
});

describe("reflection, grpc-timeout and compression", () => {
  /** reflect sends `bytes` as one reflection request and resolves with how the stream ended. */
  function reflect(version: "v1" | "v1alpha", bytes: Buffer): Promise<GrpcError | "OK"> {
    return new Promise((resolve) => {
      const path = `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`;
      const call = raw.makeBidiStreamRequest(path, identity, identity, new Metadata(), { deadline: deadline() });
      call.on("data", () => call.end());
      call.on("error", (error: GrpcError) => resolve(error));
      call.on("end", () => resolve("OK"));
      call.write(bytes);
    });
  }

  it("answers a reflection request that is not a valid message with INVALID_ARGUMENT, and serves valid ones", async () => {
    for (const version of ["v1", "v1alpha"] as const) {
      const error = failure(await reflect(version, Buffer.from([0xff, 0xff])));
      assert.equal(error.code, status.INVALID_ARGUMENT, `${version}: ${status[error.code]}: ${error.details}`);
      assert.equal(error.details, "the request is not a valid grpc.reflection ServerReflectionRequest message");
      // ServerReflectionRequest{list_services: ""} (field 7).
      assert.equal(await reflect(version, Buffer.from([0x3a, 0x00])), "OK");
    }
  });

  it("random bytes to reflection never get INTERNAL or UNKNOWN", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), async (bytes) => {
        const outcome = await reflect("v1", Buffer.from(bytes));
        if (outcome === "OK") return;
        messages.push(outcome.details);
        assert.ok(
          ![status.INTERNAL, status.UNKNOWN].includes(outcome.code),
          `${status[outcome.code]}: ${outcome.details}`,
        );
      }),
      { seed, numRuns: 100 },
    );
  });

  // These two are answered by grpc-js before any code of the service runs, so
  // they get grpc-js's statuses, which README.md (Reliability) lists.
  it("a malformed grpc-timeout is INTERNAL from grpc-js, and the service goes on", async () => {
    const outcome = await rawGrpcCall(env.address, "/blog.v1.UserService/CountUsers", { "grpc-timeout": "soon" });
    assert.equal(outcome.grpcStatus, String(status.INTERNAL));
    assert.equal(decodeURIComponent(outcome.grpcMessage ?? ""), 'Invalid grpc-timeout value "soon"');
    assert.equal((await rawGrpcCall(env.address, "/blog.v1.UserService/CountUsers")).grpcStatus, "0");
  });

  it("a compressed message that is not gzip is INTERNAL, as the gRPC status codes document names it", async () => {
    const notGzip = grpcFrame(Buffer.from("not gzip at all"), true);
    const outcome = await rawGrpcCall(
      env.address,
      "/blog.v1.UserService/CountUsers",
      { "grpc-encoding": "gzip" },
      notGzip,
    );
    assert.equal(outcome.grpcStatus, String(status.INTERNAL));
    assert.equal(decodeURIComponent(outcome.grpcMessage ?? ""), "Failed to decompress message");
    const gzipped = grpcFrame(gzipSync(Buffer.alloc(0)), true);
    const fine = await rawGrpcCall(
      env.address,
      "/blog.v1.UserService/CountUsers",
      { "grpc-encoding": "gzip" },
      gzipped,
    );
    assert.equal(fine.grpcStatus, "0", "a real gzip message is served");
  });
});

describe("afterwards", () => {
  it("the same connection and new ones are served normally", async () => {
    const { user } = await env.users.createUser({ user: { name: "After garbage", age: 1 } });
    assert.equal((await env.users.getUser({ id: user!.id })).user?.name, "After garbage");
    const again = await unary("/blog.v1.UserService/CountUsers", Buffer.alloc(0));
    assert.ok(again instanceof Buffer, "the raw client's connection still works");
  });

  it("no status message carries SQL, a stack trace, a file path or a driver message", () => {
    assert.ok(messages.length > 5);
    assertNoLeaks(messages);
  });
});
