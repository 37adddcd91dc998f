import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Metadata, Server, ServerCredentials, credentials, status } from "@grpc/grpc-js";
import type { ServerUnaryCall, ServerWritableStream, StatusObject, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { ErrorInfoSchema, ResourceInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { withDefaults } from "../src/client/call.js";
import { BlogClientError, createBlogClient } from "../src/client/index.js";
import { createClient } from "../src/client/transport.js";
import { serviceMethods } from "../src/protocol/method.js";
import { startTestEnv } from "./helpers.js";
import { until } from "./poll.js";
import type { TestEnv } from "./helpers.js";

type Callback = (error: Partial<StatusObject> | null, response?: unknown) => void;
type Unary = (call: ServerUnaryCall<unknown, unknown>, callback: Callback) => void;

/** rawServer serves hand-written grpc-js handlers for one service on 127.0.0.1, to observe what a client sends. */
async function rawServer(service: DescService, handlers: UntypedServiceImplementation) {
  const server = new Server();
  server.addService(serviceMethods(service), handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { port, address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

const user = (id: bigint) => ({ user: { id, name: "Ada", age: 36 } });
const unavailable = { code: status.UNAVAILABLE, details: "try again" };

async function rejection(call: Promise<unknown>): Promise<BlogClientError> {
  const error = await call.then(
    () => assert.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof BlogClientError, `a BlogClientError, not ${String(error)}`);
  return error;
}

describe("against the service", () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv();
  });
  after(() => env.close());

  it("users and posts share one channel and return typed messages", async () => {
    const client = createBlogClient(env.address);
    try {
      const { user } = await client.users.createUser({ user: { name: "Ada", age: 36 } });
      assert.ok(user);
      await client.posts.createPost({ post: { userId: user.id, title: "Notes" } });
      const full = await client.users.getUser({ id: user.id, view: UserView.FULL });
      assert.deepEqual(
        full.user?.posts.map((p) => p.title),
        ["Notes"],
      );
    } finally {
      client.close();
    }
  });

  it("rejects with a BlogClientError carrying the status code and message", async () => {
    const client = createBlogClient(env.address);
    try {
      const error = await rejection(client.users.getUser({ id: 424242n }));
      assert.equal(error.code, status.NOT_FOUND);
      assert.equal(error.details, "user 424242 not found");
      assert.equal(error.message, "NOT_FOUND: user 424242 not found");
      assert.ok(Array.isArray(error.errorDetails));
    } finally {
      client.close();
    }
  });

  it("fails a call whose deadline has passed with DEADLINE_EXCEEDED", async () => {
    const client = createBlogClient(env.address);
    try {
      const error = await rejection(client.users.countUsers({}, { deadline: Date.now() - 1 }));
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
  });

  it("reaches a dns:/// target", async () => {
    const client = createBlogClient(`dns:///localhost:${env.address.split(":")[1]}`);
    try {
      assert.equal(typeof (await client.users.countUsers({})).count, "bigint");
    } finally {
      client.close();
    }
  });
});

describe("call options", () => {
  const seen: { deadline?: unknown; metadata?: Metadata }[] = [];
  let server: Awaited<ReturnType<typeof rawServer>>;
  before(async () => {
    server = await rawServer(UserService, {
      // GetUser never answers: only a deadline ends it.
      getUser: (() => {}) satisfies Unary,
      countUsers: ((call, callback) => {
        seen.push({ deadline: call.getDeadline(), metadata: call.metadata });
        callback(null, { count: 1n });
      }) satisfies Unary,
    });
  });
  after(() => server.close());

  it("applies the default deadline to calls that set none", { timeout: 10_000 }, async () => {
    const client = createBlogClient(server.address, { defaultDeadlineMs: 100 });
    try {
      assert.equal((await rejection(client.users.getUser({ id: 1n }))).code, status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
  });

  it("lets a call's own deadline replace the default", async () => {
    const client = createBlogClient(server.address, { defaultDeadlineMs: 100 });
    try {
      await client.users.countUsers({}, { deadline: Date.now() + 600_000 });
      const deadline = Number(seen.at(-1)?.deadline);
      assert.ok(deadline > Date.now() + 300_000, `the call's deadline, not the default: ${deadline}`);
      assert.ok(Number.isFinite(deadline));
    } finally {
      client.close();
    }
  });

  it("sends the default metadata with every call; a call's own keys replace the defaults'", async () => {
    const metadata = new Metadata();
    metadata.set("x-client", "blog-sdk-test");
    metadata.set("x-tenant", "default");
    const client = createBlogClient(server.address, { metadata });
    try {
      await client.users.countUsers({});
      assert.deepEqual(seen.at(-1)?.metadata?.get("x-client"), ["blog-sdk-test"]);
      const own = new Metadata();
      own.set("x-tenant", "mine");
      own.set("x-request-id", "r-1");
      await client.users.countUsers({}, { metadata: own });
      const sent = seen.at(-1)?.metadata;
      assert.deepEqual(sent?.get("x-client"), ["blog-sdk-test"]);
      assert.deepEqual(sent?.get("x-tenant"), ["mine"]);
      assert.deepEqual(sent?.get("x-request-id"), ["r-1"]);
      assert.deepEqual(metadata.get("x-tenant"), ["default"], "the defaults are not changed by a call");
    } finally {
      client.close();
    }
  });
});

describe("retries", () => {
  const attempts = { getUser: 0, createUser: 0 };
  const failing = { createUser: Infinity };
  const requestIds: string[] = [];
  let server: Awaited<ReturnType<typeof rawServer>>;
  before(async () => {
    server = await rawServer(UserService, {
      // GetUser (NO_SIDE_EFFECTS) fails twice, then answers.
      getUser: ((_call, callback) => {
        attempts.getUser += 1;
        if (attempts.getUser <= 2) callback(unavailable);
        else callback(null, user(1n));
      }) satisfies Unary,
      // CreateUser (no idempotency level) fails while failing.createUser says so, recording each request_id.
      createUser: ((call, callback) => {
        attempts.createUser += 1;
        requestIds.push(String((call.request as { requestId: string }).requestId));
        if (attempts.createUser <= failing.createUser) callback(unavailable);
        else callback(null, user(7n));
      }) satisfies Unary,
    });
  });
  after(() => server.close());

  it("retries an idempotent method on UNAVAILABLE", async () => {
    const client = createBlogClient(server.address);
    try {
      attempts.getUser = 0;
      assert.equal((await client.users.getUser({ id: 1n })).user?.id, 1n);
      assert.equal(attempts.getUser, 3);
    } finally {
      client.close();
    }
  });

  it("never retries a method that is not idempotent", async () => {
    const client = createBlogClient(server.address);
    try {
      attempts.createUser = 0;
      const error = await rejection(client.users.createUser({ user: { name: "Ada", age: 36 } }));
      assert.equal(error.code, status.UNAVAILABLE);
      assert.equal(error.details, "try again");
      assert.equal(attempts.createUser, 1);
    } finally {
      client.close();
    }
  });

  it("retries a create that carries a request_id, with the same request_id, until it succeeds", async () => {
    const client = createBlogClient(server.address, { retry: { initialBackoffMs: 10 } });
    try {
      attempts.createUser = 0;
      failing.createUser = 6; // more than gRPC's own policy would try
      requestIds.length = 0;
      const requestId = "8d3c5a3e-2f4b-4d7e-9a51-3f6c2b1e0d9a";
      const { user: created } = await client.users.createUser({ requestId, user: { name: "Ada", age: 36 } });
      assert.equal(created?.id, 7n);
      assert.equal(attempts.createUser, 7);
      assert.deepEqual(new Set(requestIds), new Set([requestId]));
    } finally {
      failing.createUser = Infinity;
      client.close();
    }
  });

  it("gives a keyed create up with its last UNAVAILABLE before the deadline passes", async () => {
    const client = createBlogClient(server.address, { retry: { initialBackoffMs: 20 } });
    try {
      attempts.createUser = 0;
      const requestId = "0b7e4f9c-61d2-4c8a-b3f5-9e2d7a1c4b60";
      const error = await rejection(
        client.users.createUser({ requestId, user: { name: "Ada", age: 36 } }, { deadline: Date.now() + 500 }),
      );
      assert.equal(error.code, status.UNAVAILABLE);
      assert.ok(attempts.createUser > 1, `tried ${attempts.createUser} times`);
    } finally {
      client.close();
    }
  });

  it("stops retrying a keyed create once its caller aborts, without waiting out the backoff", async () => {
    const client = createBlogClient(server.address, { retry: { initialBackoffMs: 60_000, maxBackoffMs: 60_000 } });
    try {
      attempts.createUser = 0;
      const abort = new AbortController();
      const requestId = "3c9d2e1f-7a6b-4c5d-8e9f-0a1b2c3d4e5f";
      const call = client.users.createUser(
        { requestId, user: { name: "Ada", age: 36 } },
        { signal: abort.signal, deadline: Date.now() + 120_000 },
      );
      await until("the first attempt failed", () => attempts.createUser === 1);
      abort.abort();
      const error = await rejection(call);
      assert.equal(error.code, status.CANCELLED);
      assert.equal(attempts.createUser, 1);
    } finally {
      client.close();
    }
  });

  it("does not retry with `retry: false`", async () => {
    const client = createBlogClient(server.address, { retry: false });
    try {
      attempts.getUser = 0;
      assert.equal((await rejection(client.users.getUser({ id: 1n }))).code, status.UNAVAILABLE);
      assert.equal(attempts.getUser, 1);
      attempts.createUser = 0;
      const keyed = { requestId: "5f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", user: { name: "Ada", age: 36 } };
      assert.equal((await rejection(client.users.createUser(keyed))).code, status.UNAVAILABLE);
      assert.equal(attempts.createUser, 1);
    } finally {
      client.close();
    }
  });
});

it("spreads calls round_robin over every address of the target", async () => {
  const calls = [0, 0];
  const servers = await Promise.all(
    calls.map((_, i) =>
      rawServer(UserService, {
        countUsers: ((_call, callback) => {
          calls[i]! += 1;
          callback(null, { count: 0n });
        }) satisfies Unary,
      }),
    ),
  );
  const client = createBlogClient(`ipv4:${servers.map((s) => s.address).join(",")}`);
  try {
    // pick_first would send every call to the first address; round_robin
    // reaches the second as soon as its connection is ready.
    for (let i = 0; i < 200 && calls.some((n) => n === 0); i++) await client.users.countUsers({});
    assert.ok(
      calls.every((n) => n > 0),
      `both servers got calls: ${calls.join(", ")}`,
    );
  } finally {
    client.close();
    for (const s of servers) s.close();
  }
});

it("decodes the error details a server sends in grpc-status-details-bin", async () => {
  const server = await rawServer(UserService, {
    getUser: ((_call, callback) => {
      const details = create(StatusSchema, {
        code: status.NOT_FOUND,
        message: "user 7 not found",
        details: [
          anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "USER_NOT_FOUND", domain: "blog.v1" })),
          anyPack(ResourceInfoSchema, create(ResourceInfoSchema, { resourceType: "blog.v1.User", resourceName: "7" })),
        ],
      });
      const trailers = new Metadata();
      trailers.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, details)));
      callback({ code: status.NOT_FOUND, details: "user 7 not found", metadata: trailers });
    }) satisfies Unary,
  });
  const client = createBlogClient(server.address);
  try {
    const error = await rejection(client.users.getUser({ id: 7n }));
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.details, "user 7 not found");
    assert.equal(error.errorDetails.length, 2);
    assert.equal(error.errorInfo?.reason, "USER_NOT_FOUND");
    assert.equal(error.resourceInfo?.resourceName, "7");
  } finally {
    client.close();
    server.close();
  }
});

describe("server streams", () => {
  const serving = { status: HealthCheckResponse_ServingStatus.SERVING };
  let cancelled: Promise<void>;
  let server: Awaited<ReturnType<typeof rawServer>>;
  before(async () => {
    server = await rawServer(Health, {
      // Watch("endless") sends one message and waits; any other service fails after one.
      watch: (call: ServerWritableStream<{ service: string }, unknown>) => {
        call.write(serving);
        if (call.request.service === "endless") {
          cancelled = new Promise((resolve) => call.once("cancelled", () => resolve()));
          return;
        }
        call.emit("error", { code: status.FAILED_PRECONDITION, details: "stream broke" });
      },
    });
  });
  const clients: { close(): void }[] = [];
  after(() => {
    for (const client of clients) client.close();
    server.close();
  });

  const health = () => {
    const client = createClient(Health, server.address, credentials.createInsecure());
    clients.push(client);
    return withDefaults(Health, client, { deadlineMs: 10_000, metadata: new Metadata(), retry: false });
  };

  it("yields messages and fails with a BlogClientError", async () => {
    const received: unknown[] = [];
    const error = await (async () => {
      for await (const message of health().watch({ service: "broken" })) received.push(message.status);
    })().then(
      () => assert.fail("expected the stream to fail"),
      (e: unknown) => e,
    );
    assert.deepEqual(received, [HealthCheckResponse_ServingStatus.SERVING]);
    assert.ok(error instanceof BlogClientError);
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.equal(error.details, "stream broke");
  });

  it("cancels the call on the server when the consumer stops early", { timeout: 10_000 }, async () => {
    for await (const message of health().watch({ service: "endless" })) {
      assert.equal(message.status, HealthCheckResponse_ServingStatus.SERVING);
      break;
    }
    await cancelled;
  });
});
