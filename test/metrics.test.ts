import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Server, ServerCredentials, credentials, status } from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { createClient } from "../src/client/transport.js";
import { implement, serviceDefinition } from "../src/grpc/adapter.js";
import { HealthStatus, ServingStatus, healthService } from "../src/grpc/health.js";
import { grpcMetrics } from "../src/observability/grpc-metrics.js";
import { startMetricsServer } from "../src/observability/metrics-server.js";
import type { MetricsServer } from "../src/observability/metrics-server.js";
import { observeCalls } from "../src/observability/observe.js";
import { countStatements, grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

let env: TestEnv;
let metrics: MetricsServer;
before(async () => {
  env = await startTestEnv();
  metrics = await startMetricsServer("127.0.0.1:0", env.server.metrics);
});
after(async () => {
  await metrics.close();
  await env.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** parse reads the Prometheus text format. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Scrape is one scrape; get sums the samples of a metric whose labels include the given ones. */
class Scrape {
  constructor(readonly samples: Sample[]) {}
  get(name: string, labels: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }
  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}

async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return new Scrape(parse(await response.text()));
}

const users = { grpc_service: "blog.v1.UserService", grpc_type: "unary" };

it("counts calls by method and code in the go-grpc-prometheus metrics", async () => {
  const before = await scrape(metrics.url);
  assert.equal(before.get("grpc_server_started_total", { ...users, grpc_method: "GetUser" }), 0);
  assert.ok(before.has("grpc_server_handled_total"), "series exist before the first call");

  const statements = await countStatements(env.db, async () => {
    const { user } = await env.users.createUser({ user: { name: "Metric Ada", age: 36 } });
    await env.users.createUser({ user: { name: "Metric Bob", age: 40 } });
    await env.users.getUser({ id: user!.id, view: UserView.BASIC });
    const missing = await grpcError(env.users.getUser({ id: 987_654_321n }));
    assert.equal(missing.code, status.NOT_FOUND);
    const invalid = await grpcError(env.users.createUser({ user: { name: "", age: 1 } }));
    assert.equal(invalid.code, status.INVALID_ARGUMENT);
  });

  const now = await scrape(metrics.url);
  const delta = (name: string, labels: Record<string, string>) => now.get(name, labels) - before.get(name, labels);
  const createUser = { ...users, grpc_method: "CreateUser" };
  const getUser = { ...users, grpc_method: "GetUser" };
  assert.equal(delta("grpc_server_started_total", createUser), 3);
  assert.equal(delta("grpc_server_handled_total", { ...createUser, grpc_code: "OK" }), 2);
  assert.equal(delta("grpc_server_handled_total", { ...createUser, grpc_code: "INVALID_ARGUMENT" }), 1);
  assert.equal(delta("grpc_server_started_total", getUser), 2);
  assert.equal(delta("grpc_server_handled_total", { ...getUser, grpc_code: "OK" }), 1);
  assert.equal(delta("grpc_server_handled_total", { ...getUser, grpc_code: "NOT_FOUND" }), 1);
  assert.equal(delta("grpc_server_handled_total", getUser), 2, "no other code moved");
  assert.equal(delta("grpc_server_handling_seconds_count", getUser), 2);
  assert.equal(delta("grpc_server_msg_received_total", getUser), 2);
  assert.equal(delta("grpc_server_msg_sent_total", getUser), 1, "a failed unary call sends no message");
  assert.equal(delta("grpc_server_started_total", { ...users, grpc_method: "DeleteUser" }), 0);
  assert.equal(now.get("grpc_server_handling_seconds_bucket", { ...getUser, le: "+Inf" }), 2);

  assert.ok(statements.length > 0);
  assert.equal(
    delta("db_client_operation_duration_seconds_count", {}),
    statements.length,
    "every SQL statement is timed once",
  );
  assert.equal(now.get("db_client_connection_max"), 5, "startTestEnv's pool");
  assert.ok(now.get("db_client_connection_count", { state: "idle" }) >= 1);
  assert.equal(now.get("db_client_connection_count", { state: "used" }), 0);
  assert.equal(now.get("db_client_connection_pending_requests"), 0);
  assert.ok(now.has("process_cpu_user_seconds_total") && now.has("nodejs_eventloop_lag_seconds"), "default metrics");
});

it("answers 404 off /metrics", async () => {
  const response = await fetch(new URL("/", metrics.url));
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

it("counts the messages of a server stream and ends it with the code the client saw", async () => {
  // Health.Watch is a server-streaming method that ends only when the client cancels.
  const registry = new Registry();
  const board = new HealthStatus(["blog.v1.UserService"], ServingStatus.SERVING);
  const server = new Server();
  const middleware = [observeCalls([grpcMetrics(registry, [Health])])];
  server.addService(
    serviceDefinition(Health),
    implement(Health, healthService(board), { middleware, logError: () => {} }),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const health = createClient(Health, `127.0.0.1:${port}`, credentials.createInsecure());
  const watch = { grpc_service: "grpc.health.v1.Health", grpc_method: "Watch", grpc_type: "server_stream" };
  try {
    const cancel = new AbortController();
    const seen: ServingStatus[] = [];
    await assert.rejects(async () => {
      for await (const { status: s } of health.watch({ service: "blog.v1.UserService" }, { signal: cancel.signal })) {
        seen.push(s);
        if (seen.length === 1) board.set("blog.v1.UserService", ServingStatus.NOT_SERVING);
        else cancel.abort();
      }
    }, /CANCELLED/);
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);

    const text = () => registry.metrics().then((t) => new Scrape(parse(t)));
    for (const deadline = Date.now() + 5_000; (await text()).get("grpc_server_handled_total", watch) === 0;) {
      assert.ok(Date.now() < deadline, "the server saw the stream end");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const now = await text();
    assert.equal(now.get("grpc_server_started_total", watch), 1);
    assert.equal(now.get("grpc_server_handled_total", { ...watch, grpc_code: "CANCELLED" }), 1);
    assert.equal(now.get("grpc_server_handled_total", watch), 1);
    assert.equal(now.get("grpc_server_msg_sent_total", watch), 2);
  } finally {
    health.close();
    server.forceShutdown();
  }
});
