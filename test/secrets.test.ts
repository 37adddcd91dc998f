// Credentials never reach a log line, whatever a client sends: grpc-js logs
// the value of a metadata entry it refuses, so the service routes grpc-js's
// log through its own, redacted. A raw HTTP/2 client sends what grpc-js
// clients refuse to: an authorization value with a tab in it.
import assert from "node:assert/strict";
import type http2 from "node:http2";
import { after, before, it } from "node:test";
import { createTestDatabase } from "./helpers.js";
import { rawGrpcCall } from "./raw-http2.js";
import { startServiceProcess } from "./service-process.js";
import type { ServiceProcess } from "./service-process.js";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let service: ServiceProcess;
before(async () => {
  database = await createTestDatabase();
  service = await startServiceProcess({ DATABASE_URL: database.url });
});
after(async () => {
  service.kill();
  await service.exited;
  await database.drop();
});

/** rawCall sends one empty CountUsers request with the given headers and resolves with its grpc-status. */
const rawCall = async (headers: http2.OutgoingHttpHeaders) =>
  (await rawGrpcCall(service.address, "/blog.v1.UserService/CountUsers", headers)).grpcStatus;

it("logs no part of a bearer token that grpc-js refuses (a tab, a non-ASCII character)", async () => {
  for (const token of ["Bearer tab\tsecret-4711", "Bearer caf\u00e9-secret-4712"]) {
    const value = token.includes("\t") ? token : Buffer.from(token, "utf8").toString("latin1");
    assert.equal(await rawCall({ authorization: value }), "0", "the call itself is answered");
  }
  await service.waitForLine((l) => typeof l.grpcJs === "string" && /authorization \(its value/.test(l.grpcJs));
  const everything = JSON.stringify(service.lines) + service.stderr();
  assert.doesNotMatch(everything, /secret-471/);
});
