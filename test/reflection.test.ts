import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

// buf curl is the grpcurl of a Node.js machine: it knows nothing of our protos
// and learns every type through server reflection, as grpcurl users do.
const buf = path.resolve(import.meta.dirname, "../node_modules/.bin/buf");
const run = promisify(execFile);

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(() => env.close());

async function curl(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const base = ["curl", "--protocol", "grpc", "--http2-prior-knowledge"];
  try {
    return { ...(await run(buf, [...base, ...args])), code: 0 };
  } catch (error) {
    const e = error as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe("server reflection", () => {
  it("lists the API and health services", async () => {
    const { stdout, code } = await curl("--list-services", `http://${env.address}`);
    assert.equal(code, 0);
    const services = stdout.trim().split("\n").sort();
    for (const s of ["blog.v1.PostService", "blog.v1.UserService", "grpc.health.v1.Health"]) {
      assert.ok(services.includes(s), `${s} in ${services.join(", ")}`);
    }
  });

  it("lists methods", async () => {
    const { stdout } = await curl("--list-methods", `http://${env.address}`);
    const methods = stdout
      .trim()
      .split("\n")
      .filter((m) => m.startsWith("blog.v1.UserService/"));
    assert.deepEqual(methods.sort(), [
      "blog.v1.UserService/BatchGetUsers",
      "blog.v1.UserService/CountUsers",
      "blog.v1.UserService/CreateUser",
      "blog.v1.UserService/DeleteUser",
      "blog.v1.UserService/ExportUsers",
      "blog.v1.UserService/GetUser",
      "blog.v1.UserService/ListUsers",
      "blog.v1.UserService/UpdateUser",
      "blog.v1.UserService/WatchUsers",
    ]);
  });

  it("calls the demo's flow with JSON and no .proto files", async () => {
    const created = await curl(
      "-d",
      '{"user":{"name":"Ada","age":36}}',
      `http://${env.address}/blog.v1.UserService/CreateUser`,
    );
    assert.equal(created.code, 0, created.stderr);
    const user = JSON.parse(created.stdout).user;
    assert.equal(user.name, "Ada");
    assert.match(user.createTime, /^\d{4}-\d\d-\d\dT/, "timestamps resolve through reflection");
    const post = await curl(
      "-d",
      `{"post":{"userId":"${user.id}","title":"Hi"}}`,
      `http://${env.address}/blog.v1.PostService/CreatePost`,
    );
    assert.equal(post.code, 0, post.stderr);
    const full = await curl(
      "-d",
      `{"id":"${user.id}","view":"USER_VIEW_FULL"}`,
      `http://${env.address}/blog.v1.UserService/GetUser`,
    );
    assert.equal(JSON.parse(full.stdout).user.posts[0].title, "Hi");
    const aged = await curl(
      "-d",
      `{"user":{"id":"${user.id}","age":37},"updateMask":"age"}`,
      `http://${env.address}/blog.v1.UserService/UpdateUser`,
    );
    assert.equal(JSON.parse(aged.stdout).user.age, 37);
  });

  it("shows a caller the status code and message of a bad request", async () => {
    const { stderr, code } = await curl(
      "-d",
      '{"user":{"name":"","age":200}}',
      `http://${env.address}/blog.v1.UserService/CreateUser`,
    );
    assert.notEqual(code, 0);
    const body = JSON.parse(stderr);
    assert.equal(body.code, "invalid_argument");
    assert.match(
      body.message,
      /user\.name: must be 1 to 200 characters.*user\.age: must be greater than or equal to 0/,
    );
  });
});

describe("health", () => {
  it("reports SERVING for the server and each service, NOT_FOUND for others", async () => {
    for (const service of ["", "blog.v1.UserService", "blog.v1.PostService"]) {
      assert.equal((await env.health.check({ service })).status, ServingStatus.SERVING);
    }
    const unknown = await grpcError(env.health.check({ service: "nope.v1.Nothing" }));
    assert.equal(unknown.code, status.NOT_FOUND);
    const viaCurl = await curl("-d", "{}", `http://${env.address}/grpc.health.v1.Health/Check`);
    assert.deepEqual(JSON.parse(viaCurl.stdout), { status: "SERVING" });
  });

  it("streams changes to watchers", async () => {
    const controller = new AbortController();
    const seen: ServingStatus[] = [];
    for await (const response of env.health.watch({ service: "blog.v1.UserService" }, { signal: controller.signal })) {
      seen.push(response.status);
      if (seen.length === 1) env.server.health.set("blog.v1.UserService", ServingStatus.NOT_SERVING);
      if (seen.length === 2) break;
    }
    controller.abort();
    env.server.health.set("blog.v1.UserService", ServingStatus.SERVING);
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });
});
