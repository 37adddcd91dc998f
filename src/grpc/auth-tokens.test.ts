import assert from "node:assert/strict";
import { it } from "node:test";
import { status } from "@grpc/grpc-js";
import { PostService } from "../../gen/blog/v1/post_service_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { parseAuthTokens } from "./auth-tokens.js";

const services = [UserService, PostService];
const readToken = "r".repeat(32);
const writeToken = "w".repeat(32);
const file = (tokens: unknown[]) => JSON.stringify({ tokens });
const tokens = parseAuthTokens(
  file([
    { name: "reader", token: readToken, access: "read" },
    { name: "writer", token: writeToken, access: "read-write" },
    { name: "indexer", token: "i".repeat(32), methods: ["blog.v1.PostService/*", "blog.v1.UserService/ExportUsers"] },
  ]),
  services,
);
const bearer = (token: string) => [`Bearer ${token}`];

it("read access is exactly the methods the protos mark NO_SIDE_EFFECTS", () => {
  const readable = services
    .flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`))
    .filter((name) => tokens.check(bearer(readToken), name).code === status.OK);
  assert.deepEqual(readable.sort(), [
    "blog.v1.PostService/ExportPosts",
    "blog.v1.PostService/GetPost",
    "blog.v1.PostService/ListPosts",
    "blog.v1.PostService/WatchPosts",
    "blog.v1.UserService/BatchGetUsers",
    "blog.v1.UserService/CountUsers",
    "blog.v1.UserService/ExportUsers",
    "blog.v1.UserService/GetUser",
    "blog.v1.UserService/ListUsers",
    "blog.v1.UserService/WatchUsers",
  ]);
  // DeleteUser is IDEMPOTENT, not NO_SIDE_EFFECTS: a write.
  const denied = tokens.check(bearer(readToken), "blog.v1.UserService/DeleteUser");
  assert.deepEqual(denied, {
    code: status.PERMISSION_DENIED,
    reason: "METHOD_NOT_ALLOWED",
    message: 'token "reader" (read) may not call blog.v1.UserService/DeleteUser',
    name: "reader",
  });
});

it("read-write access calls everything; a methods list calls what it names", () => {
  for (const method of UserService.methods) {
    assert.equal(tokens.check(bearer(writeToken), `blog.v1.UserService/${method.name}`).code, status.OK);
  }
  const indexer = bearer("i".repeat(32));
  assert.equal(tokens.check(indexer, "blog.v1.PostService/CreatePost").code, status.OK);
  assert.equal(tokens.check(indexer, "blog.v1.UserService/ExportUsers").code, status.OK);
  assert.equal(tokens.check(indexer, "blog.v1.UserService/GetUser").code, status.PERMISSION_DENIED);
});

it("answers UNAUTHENTICATED for a missing, malformed, repeated or unknown token, never echoing it", () => {
  const method = "blog.v1.UserService/GetUser";
  const cases: [string[], string, string][] = [
    [[], "MISSING_TOKEN", 'missing credentials: send the metadata "authorization: Bearer <token>"'],
    [[`Basic ${readToken}`], "MALFORMED_AUTHORIZATION", 'the "authorization" metadata must be "Bearer <token>"'],
    [[`Bearer ${readToken} extra`], "MALFORMED_AUTHORIZATION", 'the "authorization" metadata must be "Bearer <token>"'],
    [
      [...bearer(readToken), ...bearer(writeToken)],
      "MALFORMED_AUTHORIZATION",
      'send one "authorization" metadata value, not 2',
    ],
    [bearer(`${readToken}x`), "INVALID_TOKEN", "the bearer token is not valid"],
    [bearer(readToken.slice(1)), "INVALID_TOKEN", "the bearer token is not valid"],
  ];
  for (const [authorization, reason, message] of cases) {
    assert.deepEqual(tokens.check(authorization, method), { code: status.UNAUTHENTICATED, reason, message });
  }
  assert.equal(tokens.check([`bearer  ${readToken}`], method).code, status.OK, "the scheme is case-insensitive");
});

it("refuses a bad file with a message that names the entry but never its token", () => {
  const secret = "s3cr3t-t0ken-value-never-shown";
  const bad: [string, RegExp][] = [
    ["{", /^is not valid JSON$/],
    [`{"tokens": [{"name": "a", "token": "${secret}", "access": "read",}]}`, /^is not valid JSON$/],
    ["[]", /must be \{"tokens": \[\.\.\.\]\}/],
    [file([{ token: secret, access: "read" }]), /tokens\[0\]: "name" must be a non-empty string/],
    [file([{ name: "a", token: "short", access: "read" }]), /tokens\[0\] \("a"\): "token" must be at least 16/],
    [file([{ name: "a", token: secret, access: "admin" }]), /"access" must be "read" or "read-write"/],
    [file([{ name: "a", token: secret }]), /give either "access" .* or "methods"/],
    [file([{ name: "a", token: secret, access: "read", methods: [] }]), /not both or neither/],
    [file([{ name: "a", token: secret, methods: ["blog.v1.UserService/Frob"] }]), /names no method/],
    [file([{ name: "a", token: secret, methods: ["GetUser"] }]), /methods entries look like/],
    [
      file([
        { name: "a", token: secret, access: "read" },
        { name: "a", token: `${secret}2`, access: "read" },
      ]),
      /two tokens are named "a"/,
    ],
    [
      file([
        { name: "a", token: secret, access: "read" },
        { name: "b", token: secret, access: "read-write" },
      ]),
      /token "b" repeats another's token/,
    ],
  ];
  for (const [text, expected] of bad) {
    assert.throws(
      () => parseAuthTokens(text, services),
      (error: Error) => {
        assert.match(error.message, expected);
        assert.ok(!error.message.includes(secret), error.message);
        return true;
      },
    );
  }
});
