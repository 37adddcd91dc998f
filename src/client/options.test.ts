import assert from "node:assert/strict";
import { it } from "node:test";
import { Channel, credentials } from "@grpc/grpc-js";
import { PostService } from "../../gen/blog/v1/post_service_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { channelOptions, isIdempotent, serviceConfig } from "./options.js";

interface Config {
  loadBalancingConfig: object[];
  methodConfig: { name: { service: string; method: string }[]; retryPolicy: Record<string, unknown> }[];
}

const config = (retry?: Parameters<typeof serviceConfig>[1]) =>
  serviceConfig([UserService, PostService], retry) as Config;

it("retries exactly the methods the protos mark idempotent, on UNAVAILABLE only", () => {
  const [retried, ...rest] = config().methodConfig;
  assert.equal(rest.length, 0);
  const names = retried!.name.map((n) => `${n.service}/${n.method}`);
  for (const name of ["GetUser", "CountUsers", "DeleteUser"]) assert.ok(names.includes(`blog.v1.UserService/${name}`));
  for (const name of ["GetPost", "DeletePost"]) assert.ok(names.includes(`blog.v1.PostService/${name}`));
  for (const name of ["CreateUser", "UpdateUser"]) assert.ok(!names.includes(`blog.v1.UserService/${name}`));
  for (const name of ["CreatePost", "UpdatePost"]) assert.ok(!names.includes(`blog.v1.PostService/${name}`));
  const idempotent = [UserService, PostService].flatMap((s) => s.methods.filter(isIdempotent));
  assert.equal(names.length, idempotent.length);
  assert.deepEqual(retried!.retryPolicy.retryableStatusCodes, ["UNAVAILABLE"]);
});

it("uses exponential backoff that the options tune, and `retry: false` turns retries off", () => {
  assert.deepEqual(config().methodConfig[0]!.retryPolicy, {
    maxAttempts: 5,
    initialBackoff: "0.100s",
    maxBackoff: "5.000s",
    backoffMultiplier: 2,
    retryableStatusCodes: ["UNAVAILABLE"],
  });
  const tuned = config({ maxAttempts: 3, initialBackoffMs: 250, maxBackoffMs: 1500, backoffMultiplier: 1.5 });
  assert.deepEqual(tuned.methodConfig[0]!.retryPolicy, {
    maxAttempts: 3,
    initialBackoff: "0.250s",
    maxBackoff: "1.500s",
    backoffMultiplier: 1.5,
    retryableStatusCodes: ["UNAVAILABLE"],
  });
  assert.deepEqual(config(false).methodConfig, []);
});

it("balances round_robin and grpc-js accepts the service config", () => {
  assert.deepEqual(config().loadBalancingConfig, [{ round_robin: {} }]);
  const options = channelOptions([UserService, PostService], {
    channelOptions: { "grpc.max_receive_message_length": 1024 },
  });
  assert.equal(options["grpc.enable_retries"], 1);
  assert.equal(options["grpc.service_config_disable_resolution"], 1);
  assert.equal(options["grpc.max_receive_message_length"], 1024);
  // grpc-js validates the service config when the channel is built and throws on a bad one.
  const channel = new Channel("127.0.0.1:1", credentials.createInsecure(), options);
  channel.close();
  assert.throws(
    () =>
      new Channel(
        "127.0.0.1:1",
        credentials.createInsecure(),
        channelOptions([UserService], { retry: { maxAttempts: 1 } }),
      ),
    /maxAttempts must be an integer at least 2/,
  );
});
