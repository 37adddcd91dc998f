import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { credentials, status } from "@grpc/grpc-js";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { createBlogClient } from "../src/client/index.js";
import { loadConfig } from "../src/config.js";
import { createClient } from "../src/client/transport.js";
import { serverCredentials } from "../src/grpc/credentials.js";
import { makeCertificates } from "./certs.js";
import type { Certificates } from "./certs.js";
import { startCustomServer } from "./custom-server.js";
import type { CustomServer } from "./custom-server.js";
import { grpcError } from "./helpers.js";

// Two real servers over one database, each with certificates made by openssl
// for this run: TLS only, and mutual TLS. Failed handshakes surface in grpc-js
// as UNAVAILABLE: the client never gets as far as sending a call.

let certs: Certificates;
let tls: CustomServer;
let mutual: CustomServer;
before(async () => {
  certs = await makeCertificates();
  tls = await startCustomServer({
    credentials: serverCredentials({
      certFile: certs.server.certFile,
      keyFile: certs.server.keyFile,
      clientCaFile: undefined,
    }),
  });
  mutual = await startCustomServer({
    credentials: serverCredentials({
      certFile: certs.server.certFile,
      keyFile: certs.server.keyFile,
      clientCaFile: certs.ca.certFile,
    }),
  });
});
after(async () => {
  await tls?.close();
  await mutual?.close();
  await certs?.remove();
});

/** countUsers makes one call with the given credentials on a channel of its own. */
async function countUsers(port: number, creds: ChannelCredentials): Promise<bigint> {
  // A local subchannel pool: no connection is shared with another test's credentials.
  const client = createClient(UserService, `127.0.0.1:${port}`, creds, { "grpc.use_local_subchannel_pool": 1 });
  try {
    const { count } = await client.countUsers({}, { deadline: Date.now() + 5000 });
    return count;
  } finally {
    client.close();
  }
}

describe("TLS (TLS_CERT, TLS_KEY)", () => {
  it("serves a client that trusts the CA, through the client SDK's credentials option", async () => {
    const client = createBlogClient(`127.0.0.1:${tls.port}`, { credentials: credentials.createSsl(certs.ca.cert) });
    try {
      const { user } = await client.users.createUser({ user: { name: "Ada", age: 36 } });
      const read = await client.users.getUser({ id: user!.id });
      assert.equal(read.user?.name, "Ada");
    } finally {
      client.close();
    }
  });

  it("refuses a plaintext client: UNAVAILABLE", async () => {
    const error = await grpcError(countUsers(tls.port, credentials.createInsecure()));
    assert.equal(error.code, status.UNAVAILABLE, error.message);
  });

  it("is refused by a client that does not trust its CA: UNAVAILABLE", async () => {
    const error = await grpcError(countUsers(tls.port, credentials.createSsl(certs.rogue.cert)));
    assert.equal(error.code, status.UNAVAILABLE, error.message);
  });
});

describe("mutual TLS (TLS_CLIENT_CA)", () => {
  it("serves a client whose certificate the client CA signed", async () => {
    const creds = credentials.createSsl(certs.ca.cert, certs.client.key, certs.client.cert);
    assert.equal(typeof (await countUsers(mutual.port, creds)), "bigint");
  });

  it("refuses a client without a certificate: UNAVAILABLE", async () => {
    const error = await grpcError(countUsers(mutual.port, credentials.createSsl(certs.ca.cert)));
    assert.equal(error.code, status.UNAVAILABLE, error.message);
  });

  it("refuses a client certificate from another CA with the same name: UNAVAILABLE", async () => {
    const creds = credentials.createSsl(certs.ca.cert, certs.rogue.key, certs.rogue.cert);
    const error = await grpcError(countUsers(mutual.port, creds));
    assert.equal(error.code, status.UNAVAILABLE, error.message);
  });

  it("refuses a plaintext client: UNAVAILABLE", async () => {
    const error = await grpcError(countUsers(mutual.port, credentials.createInsecure()));
    assert.equal(error.code, status.UNAVAILABLE, error.message);
  });

  it("logged no call for any refused client: they never got past the handshake", () => {
    const calls = mutual.logs.filter((l) => typeof l.grpcCode === "string");
    assert.deepEqual(
      calls.map((l) => l.grpcCode),
      ["OK"],
      "only the one call with a valid certificate",
    );
  });
});

describe("TLS configuration", () => {
  const files = { TLS_CERT: "server.crt", TLS_KEY: "server.key" };

  it("takes both TLS_CERT and TLS_KEY, or neither; TLS_CLIENT_CA only with them", () => {
    assert.equal(loadConfig({}).tls, undefined);
    assert.throws(() => loadConfig({ TLS_CERT: "server.crt" }), /TLS_CERT and TLS_KEY must be set together/);
    assert.throws(() => loadConfig({ TLS_KEY: "server.key" }), /TLS_CERT and TLS_KEY must be set together/);
    assert.throws(() => loadConfig({ TLS_CLIENT_CA: "ca.crt" }), /TLS_CLIENT_CA needs TLS_CERT and TLS_KEY/);
    const mutualConfig = loadConfig({ ...files, TLS_CLIENT_CA: "ca.crt" }).tls;
    assert.match(mutualConfig?.clientCaFile ?? "", /\/ca\.crt$/);
    assert.equal(loadConfig(files).tls?.clientCaFile, undefined);
  });

  it("stops start-up on a file it cannot read, naming the variable", () => {
    assert.throws(
      () =>
        serverCredentials({
          certFile: "/nonexistent/server.crt",
          keyFile: certs.server.keyFile,
          clientCaFile: undefined,
        }),
      /^Error: TLS_CERT: cannot read \/nonexistent\/server\.crt \(ENOENT\)$/,
    );
    assert.throws(
      () =>
        serverCredentials({
          certFile: certs.server.certFile,
          keyFile: certs.server.keyFile,
          clientCaFile: "/nonexistent/ca.crt",
        }),
      /TLS_CLIENT_CA: cannot read/,
    );
  });
});
