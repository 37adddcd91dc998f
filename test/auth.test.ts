import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, credentials, status } from "@grpc/grpc-js";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { createBlogClient } from "../src/client/index.js";
import { createClient } from "../src/client/transport.js";
import type { ClientError } from "../src/client/transport.js";
import { parseAuthTokens } from "../src/grpc/auth-tokens.js";
import { apiServices } from "../src/server.js";
import { makeCertificates } from "./certs.js";
import type { Certificates } from "./certs.js";
import { startCustomServer } from "./custom-server.js";
import type { CustomServer } from "./custom-server.js";
import { createTestDatabase, grpcError } from "./helpers.js";
import { startServiceProcess } from "./service-process.js";
import type { LogLine } from "./service-process.js";

const tokens = {
  reader: "reader-8f2c1e9a7b6d4e3f",
  writer: "writer-1a2b3c4d5e6f7a8b",
  exporter: "exporter-9e8d7c6b5a4f3e2d",
};
const tokensFile = JSON.stringify({
  tokens: [
    { name: "reader", token: tokens.reader, access: "read" },
    { name: "writer", token: tokens.writer, access: "read-write" },
    { name: "exporter", token: tokens.exporter, methods: ["blog.v1.UserService/ExportUsers"] },
  ],
});

const bearer = (token: string) => {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
};

/** reasonOf reads the ErrorInfo reason from the grpc-status-details-bin trailer. */
function reasonOf(error: ClientError): string | undefined {
  const [bytes] = error.metadata.get("grpc-status-details-bin");
  if (!(bytes instanceof Buffer)) return undefined;
  const [detail] = fromBinary(StatusSchema, bytes).details;
  return detail === undefined ? undefined : anyUnpack(detail, ErrorInfoSchema)?.reason;
}

function usersClient(address: string, creds: ChannelCredentials = credentials.createInsecure()) {
  return createClient(UserService, address, creds, { "grpc.use_local_subchannel_pool": 1 });
}

describe("bearer tokens (AUTH_TOKENS_FILE)", () => {
  let env: CustomServer;
  let users: ReturnType<typeof usersClient>;
  let address: string;
  before(async () => {
    env = await startCustomServer({ authTokens: parseAuthTokens(tokensFile, apiServices) });
    address = `127.0.0.1:${env.port}`;
    users = usersClient(address);
  });
  after(async () => {
    users?.close();
    await env?.close();
  });

  it("answers UNAUTHENTICATED without a token", async () => {
    const error = await grpcError(users.countUsers({}));
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.equal(error.details, 'missing credentials: send the metadata "authorization: Bearer <token>"');
    assert.equal(reasonOf(error), "MISSING_TOKEN");
  });

  it("answers UNAUTHENTICATED for a wrong or malformed token, without echoing it", async () => {
    const wrong = `${tokens.writer}0`;
    const error = await grpcError(users.createUser({ user: { name: "Eve", age: 30 } }, { metadata: bearer(wrong) }));
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.equal(error.details, "the bearer token is not valid");
    assert.equal(reasonOf(error), "INVALID_TOKEN");
    const basic = new Metadata();
    basic.set("authorization", `Basic ${tokens.writer}`);
    const malformed = await grpcError(users.countUsers({}, { metadata: basic }));
    assert.equal(malformed.code, status.UNAUTHENTICATED);
    assert.equal(malformed.details, 'the "authorization" metadata must be "Bearer <token>"');
    const [count] = await env.db("users").count({ n: "*" });
    assert.equal(Number(count?.n), 0, "nothing was written");
  });

  it("answers PERMISSION_DENIED for a read-only token on a write, naming the token and the method", async () => {
    const error = await grpcError(
      users.createUser({ user: { name: "Eve", age: 30 } }, { metadata: bearer(tokens.reader) }),
    );
    assert.equal(error.code, status.PERMISSION_DENIED);
    assert.equal(error.details, 'token "reader" (read) may not call blog.v1.UserService/CreateUser');
    assert.equal(reasonOf(error), "METHOD_NOT_ALLOWED");
    const exporter = await grpcError(users.getUser({ id: 1n }, { metadata: bearer(tokens.exporter) }));
    assert.equal(exporter.code, status.PERMISSION_DENIED);
    assert.match(exporter.details, /^token "exporter" \(methods blog\.v1\.UserService\/ExportUsers\) may not call/);
  });

  it("lets a read-write token write and a read-only token read", async () => {
    const { user } = await users.createUser({ user: { name: "Ada", age: 36 } }, { metadata: bearer(tokens.writer) });
    const read = await users.getUser({ id: user!.id }, { metadata: bearer(tokens.reader) });
    assert.equal(read.user?.name, "Ada");
    const exported: string[] = [];
    for await (const page of users.exportUsers({}, { metadata: bearer(tokens.exporter) })) {
      exported.push(...page.users.map((u) => u.name));
    }
    assert.deepEqual(exported, ["Ada"]);
  });

  it("sends the client SDK's token option on every call", async () => {
    const client = createBlogClient(address, { token: tokens.writer });
    const anonymous = createBlogClient(address);
    try {
      assert.equal(typeof (await client.users.countUsers({})).count, "bigint");
      const { user } = await client.users.createUser({ user: { name: "Grace", age: 45 } });
      assert.equal(user?.name, "Grace");
      const error = await grpcError(anonymous.users.countUsers({}));
      assert.equal(error.code, status.UNAUTHENTICATED);
    } finally {
      client.close();
      anonymous.close();
    }
  });

  it("leaves health checks open", async () => {
    const health = createClient(Health, address, credentials.createInsecure());
    try {
      assert.equal((await health.check({ service: "" })).status, ServingStatus.SERVING);
      assert.equal((await health.check({ service: "blog.v1.UserService" })).status, ServingStatus.SERVING);
    } finally {
      health.close();
    }
  });

  it("leaves reflection open: buf curl lists the services without a token", async () => {
    const buf = path.resolve(import.meta.dirname, "../node_modules/.bin/buf");
    const args = ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", `http://${address}`];
    const { stdout } = await promisify(execFile)(buf, args);
    const services = stdout.trim().split("\n");
    for (const s of ["blog.v1.PostService", "blog.v1.UserService", "grpc.health.v1.Health"]) {
      assert.ok(services.includes(s), `${s} in ${services.join(", ")}`);
    }
  });

  it("logs the token's name with each call and each refusal, never a token", () => {
    const text = JSON.stringify(env.logs);
    for (const token of Object.values(tokens)) assert.ok(!text.includes(token.slice(0, 12)), "a token was logged");
    const created = env.logs.find((l) => l.method === "/blog.v1.UserService/CreateUser" && l.grpcCode === "OK");
    assert.equal(created?.caller, "writer");
    const refused = env.logs.filter((l) => l.level === 40 && typeof l.grpcCode === "string");
    assert.deepEqual(
      refused.map((l) => [l.grpcCode, l.caller]),
      [
        ["UNAUTHENTICATED", undefined],
        ["UNAUTHENTICATED", undefined],
        ["UNAUTHENTICATED", undefined],
        ["PERMISSION_DENIED", "reader"],
        ["PERMISSION_DENIED", "exporter"],
        ["UNAUTHENTICATED", undefined],
      ],
    );
  });
});

describe("the service process with TLS_CERT, TLS_KEY, TLS_CLIENT_CA and AUTH_TOKENS_FILE", () => {
  let certs: Certificates;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  before(async () => {
    certs = await makeCertificates();
    database = await createTestDatabase();
  });
  after(async () => {
    await database?.drop();
    await certs?.remove();
  });

  it("needs both a client certificate and a token", async () => {
    const file = path.join(path.dirname(certs.ca.certFile), "tokens.json");
    await writeFile(file, tokensFile);
    const service = await startServiceProcess({
      DATABASE_URL: database.url,
      TLS_CERT: certs.server.certFile,
      TLS_KEY: certs.server.keyFile,
      TLS_CLIENT_CA: certs.ca.certFile,
      AUTH_TOKENS_FILE: file,
    });
    const mtls = credentials.createSsl(certs.ca.cert, certs.client.key, certs.client.cert);
    const good = usersClient(service.address, mtls);
    const noCert = usersClient(service.address, credentials.createSsl(certs.ca.cert));
    try {
      const listening = service.lines.find((l) => l.tls !== undefined);
      assert.deepEqual([listening?.tls, listening?.authTokens], ["mutual", ["reader", "writer", "exporter"]]);
      const { user } = await good.createUser({ user: { name: "Ada", age: 36 } }, { metadata: bearer(tokens.writer) });
      assert.equal(user?.name, "Ada");
      assert.equal((await grpcError(good.countUsers({}))).code, status.UNAUTHENTICATED);
      const denied = await grpcError(good.deleteUser({ id: user!.id }, { metadata: bearer(tokens.reader) }));
      assert.equal(denied.code, status.PERMISSION_DENIED);
      const refused = await grpcError(noCert.countUsers({}, { metadata: bearer(tokens.writer) }));
      assert.equal(refused.code, status.UNAVAILABLE);
    } finally {
      good.close();
      noCert.close();
      service.child.kill("SIGTERM");
      const { code } = await service.exited;
      assert.equal(code, 0);
    }
  });

  it("refuses to start with a bad tokens file, without printing a token", async () => {
    const file = path.join(path.dirname(certs.ca.certFile), "bad-tokens.json");
    await writeFile(file, JSON.stringify({ tokens: [{ name: "short", token: "tooShort1", access: "read" }] }));
    const failed = startServiceProcess({ DATABASE_URL: database.url, AUTH_TOKENS_FILE: file });
    await assert.rejects(failed, (error: Error & { lines?: LogLine[] }) => {
      const fatal = error.lines?.find((l) => l.msg === "blog-service failed to start");
      const message = (fatal?.err as { message?: string } | undefined)?.message ?? "";
      assert.match(
        message,
        /^AUTH_TOKENS_FILE .*bad-tokens\.json: tokens\[0\] \("short"\): "token" must be at least 16/,
      );
      assert.ok(!JSON.stringify(error.lines).includes("tooShort1"), "the token was printed");
      return true;
    });
  });
});
