import assert from "node:assert/strict";
import { after, before, beforeEach, it } from "node:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Metadata, status } from "@grpc/grpc-js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { startTracing } from "../src/observability/tracing.js";
import type { Tracing } from "../src/observability/tracing.js";
import { grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

// The SDK as main.ts installs it, with an in-memory exporter instead of OTLP.
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let env: TestEnv;
// A distinctive id, so a statement that inlined its bindings would show it.
const userId = 4_242_424n;
before(async () => {
  tracing = startTracing({ spanProcessor: new SimpleSpanProcessor(exporter) });
  env = await startTestEnv();
  await env.db.raw("INSERT INTO users (id, name, age) VALUES (?, 'Traced Ada', 36)", [String(userId)]);
  await env.posts.createPost({ post: { userId, title: "Traced post" } });
});
after(async () => {
  await env.close();
  await tracing.shutdown();
});
beforeEach(() => exporter.reset());

/** serverSpan waits for the one server span named `name` (it ends as the answer leaves). */
async function serverSpan(name: string): Promise<ReadableSpan> {
  for (const deadline = Date.now() + 5_000; ; await new Promise((resolve) => setTimeout(resolve, 10))) {
    const found = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);
    if (found.length > 0) {
      assert.deepEqual(
        found.map((s) => s.name),
        [name],
      );
      return found[0]!;
    }
    assert.ok(Date.now() < deadline, `no server span ${name}`);
  }
}

const children = (parent: ReadableSpan) =>
  exporter.getFinishedSpans().filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);

it("makes one server span per call with its SQL statements as child spans", async () => {
  await env.users.getUser({ id: userId, view: UserView.FULL });
  const server = await serverSpan("blog.v1.UserService/GetUser");
  assert.equal(server.kind, SpanKind.SERVER);
  assert.deepEqual(server.attributes, {
    "rpc.system": "grpc",
    "rpc.service": "blog.v1.UserService",
    "rpc.method": "GetUser",
    "rpc.grpc.status_code": status.OK,
  });
  assert.equal(server.status.code, SpanStatusCode.UNSET);

  const sql = children(server);
  assert.equal(sql.length, 2, "withGraphFetched: the user, then the posts");
  assert.equal(exporter.getFinishedSpans().length, 3, "nothing else was traced");
  for (const span of sql) {
    assert.equal(span.kind, SpanKind.CLIENT);
    assert.equal(span.name, "SELECT");
    assert.equal(span.spanContext().traceId, server.spanContext().traceId);
    assert.equal(span.attributes["db.system"], "postgresql");
    assert.equal(span.attributes["db.system.name"], "postgresql");
    const statement = String(span.attributes["db.statement"]);
    assert.match(statement, /^select /i);
    assert.match(statement, /\$1|\?/, "placeholders, not bindings");
    assert.ok(!statement.includes(String(userId)), statement);
  }
  assert.match(String(sql[0]!.attributes["db.statement"]), /"users"/);
  assert.match(String(sql[1]!.attributes["db.statement"]), /"posts"/);
});

it("continues the caller's W3C trace from traceparent", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentId = "00f067aa0ba902b7";
  const metadata = new Metadata();
  metadata.set("traceparent", `00-${traceId}-${parentId}-01`);
  await env.users.getUser({ id: userId }, { metadata });
  const server = await serverSpan("blog.v1.UserService/GetUser");
  assert.equal(server.spanContext().traceId, traceId);
  assert.equal(server.parentSpanContext?.spanId, parentId);
  assert.equal(server.parentSpanContext?.isRemote, true);
  assert.equal(children(server).length, 1);
});

it("records the status code, and marks server faults only", async () => {
  const missing = await grpcError(env.users.getUser({ id: 987_654_321n }));
  assert.equal(missing.code, status.NOT_FOUND);
  const server = await serverSpan("blog.v1.UserService/GetUser");
  assert.equal(server.attributes["rpc.grpc.status_code"], status.NOT_FOUND);
  assert.equal(server.status.code, SpanStatusCode.UNSET, "NOT_FOUND is the caller's problem, not an error span");
});
