import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Metadata, Server, ServerCredentials } from "@grpc/grpc-js";
import type { ServerUnaryCall } from "@grpc/grpc-js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { serviceMethods } from "../protocol/method.js";
import { minLsnKey } from "../protocol/keys.js";
import { createBlogClient } from "./index.js";

// A hand-written server stands in for blog-service: CreateUser answers with
// the next position in its trailer, GetUser records the position it was sent.
type Callback = (error: null, response: unknown, trailer?: Metadata) => void;

let server: Server;
let address: string;
const positions: string[] = [];
const received: (string | undefined)[] = [];

before(async () => {
  server = new Server();
  server.addService(serviceMethods(UserService), {
    createUser: (_call: ServerUnaryCall<unknown, unknown>, callback: Callback) => {
      const trailer = new Metadata();
      const next = positions.shift();
      if (next !== undefined) trailer.set(minLsnKey, next);
      callback(null, { user: { id: 1n, name: "Ada" } }, trailer);
    },
    getUser: (call: ServerUnaryCall<unknown, unknown>, callback: Callback) => {
      received.push(call.metadata.get(minLsnKey)[0] as string | undefined);
      callback(null, { user: { id: 1n, name: "Ada" } });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});
after(() => server.forceShutdown());

/** sent makes one GetUser with the client and returns the position the server received. */
async function sent(client: ReturnType<typeof createBlogClient>, metadata?: Metadata): Promise<string | undefined> {
  await client.users.getUser({ id: 1n }, { metadata });
  return received.at(-1);
}

const write = (client: ReturnType<typeof createBlogClient>, position?: string) => {
  if (position !== undefined) positions.push(position);
  return client.users.createUser({ user: { name: "Ada" } });
};

it("sends back the highest position any call of the client received, never a lower one", async () => {
  const client = createBlogClient(address);
  const other = createBlogClient(address);
  try {
    assert.equal(await sent(client), undefined, "nothing written yet");
    await write(client, "0/200");
    assert.equal(await sent(client), "0/200");
    await write(client, "0/1F0");
    assert.equal(await sent(client), "0/200", "a lower position does not replace a higher one");
    await write(client);
    assert.equal(await sent(client), "0/200", "a call without the trailer changes nothing");
    await write(client, "1/0");
    assert.equal(await sent(client), "1/0", "the high half counts first");
    assert.equal(await sent(other), undefined, "clients do not share positions");
  } finally {
    client.close();
    other.close();
  }
});

it("keeps a higher position the caller sets, and replaces a lower one", async () => {
  const client = createBlogClient(address);
  try {
    await write(client, "0/500");
    const own = (position: string) => {
      const metadata = new Metadata();
      metadata.set(minLsnKey, position);
      return metadata;
    };
    assert.equal(await sent(client, own("0/900")), "0/900");
    assert.equal(await sent(client, own("0/100")), "0/500");
  } finally {
    client.close();
  }
});

it("sends nothing with readYourWrites: false", async () => {
  const client = createBlogClient(address, { readYourWrites: false });
  try {
    await write(client, "0/700");
    assert.equal(await sent(client), undefined);
  } finally {
    client.close();
  }
});
