import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, it } from "node:test";
import { Client, Metadata, credentials, status } from "@grpc/grpc-js";
import { pino } from "pino";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createClient } from "../src/client/transport.js";
import { createServer } from "../src/server.js";
import type { BlogServer } from "../src/server.js";
import { createTestDatabase, grpcError } from "./helpers.js";

// The server as main.ts builds it with LOG_SQL=1, logging into memory.
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line));
    done();
  },
});
const log = pino({ level: "info" }, sink);
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: ReturnType<typeof createDatabase>;
let server: BlogServer;
let users: ReturnType<typeof createClient<typeof UserService>>;
let address: string;
before(async () => {
  database = await createTestDatabase();
  db = createDatabase({ url: database.url, poolMax: 2, logSql: true, log });
  await migrateLatest(db);
  server = createServer({ db, log });
  address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
  users = createClient(UserService, address, credentials.createInsecure());
});
after(async () => {
  users.close();
  await server.shutdown(1000);
  await db.destroy();
  await database.drop();
});

/** callLine waits for the one per-RPC line of the call with this request id. */
async function callLine(requestId: string): Promise<Record<string, unknown>> {
  for (const deadline = Date.now() + 5_000; ; await new Promise((resolve) => setTimeout(resolve, 10))) {
    const found = lines.filter((l) => l.requestId === requestId && l.method !== undefined);
    if (found.length > 0) {
      assert.equal(found.length, 1, "one line per call");
      return found[0]!;
    }
    assert.ok(Date.now() < deadline, `no log line for ${requestId}`);
  }
}

const withRequestId = (id: string) => {
  const metadata = new Metadata();
  metadata.set("x-request-id", id);
  return { metadata };
};

it("logs one info line per call: method, code, duration, peer, request id, SQL count", async () => {
  const missing = await grpcError(users.getUser({ id: 987_654_321n }, withRequestId("req-missing-1")));
  assert.equal(missing.code, status.NOT_FOUND);
  const line = await callLine("req-missing-1");
  assert.equal(line.level, 30, "info");
  assert.equal(line.method, "/blog.v1.UserService/GetUser");
  assert.equal(line.grpcCode, "NOT_FOUND");
  assert.equal(line.grpcStatus, status.NOT_FOUND);
  assert.equal(line.grpcType, "unary");
  assert.equal(typeof line.durationMs, "number");
  assert.ok((line.durationMs as number) >= 0);
  assert.match(String(line.peer), /127\.0\.0\.1:\d+/);
  assert.equal(line.sqlStatements, 1);

  const sql = lines.filter((l) => l.msg === "sql" && l.requestId === "req-missing-1");
  assert.equal(sql.length, 1, "LOG_SQL lines carry the request id of their call");
});

it("counts every statement of a call, and never logs request bodies", async () => {
  await users.createUser({ user: { name: "Zelda Secretname", age: 36 } }, withRequestId("req-create-1"));
  const line = await callLine("req-create-1");
  assert.equal(line.grpcCode, "OK");
  const statements = lines.filter((l) => l.msg === "sql" && l.requestId === "req-create-1").length;
  assert.ok(statements >= 1);
  assert.equal(line.sqlStatements, statements);
  assert.ok(!JSON.stringify(line).includes("Secretname"), "no user data in the call line");
});

it("makes up a request id when the caller sends none or a malformed one", async () => {
  const before = lines.length;
  await grpcError(users.getUser({ id: 987_654_322n }, withRequestId("id with spaces {}")));
  await grpcError(users.getUser({ id: 987_654_323n }, withRequestId("x".repeat(129))));
  await grpcError(users.getUser({ id: 987_654_324n }));
  for (const deadline = Date.now() + 5_000; lines.slice(before).filter((l) => l.method).length < 3;) {
    assert.ok(Date.now() < deadline);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const ids = lines
    .slice(before)
    .filter((l) => l.method)
    .map((l) => String(l.requestId));
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, 3);
});

it("echoes the request id back in the x-request-id trailer, success or failure", async () => {
  const raw = new Client(address, credentials.createInsecure());
  const trailer = (path: string, requestId: string) =>
    new Promise<unknown>((resolve) => {
      const metadata = new Metadata();
      metadata.set("x-request-id", requestId);
      const bytes = (b: Buffer) => b;
      const call = raw.makeUnaryRequest(path, bytes, bytes, Buffer.alloc(0), metadata, () => {});
      call.on("status", (s) => resolve(s.metadata.get("x-request-id")[0]));
    });
  try {
    assert.equal(await trailer("/blog.v1.UserService/CountUsers", "req-echo-ok"), "req-echo-ok");
    assert.equal(await trailer("/blog.v1.UserService/GetUser", "req-echo-fail"), "req-echo-fail");
  } finally {
    raw.close();
  }
});
