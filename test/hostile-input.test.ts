// Regression tests for what the property-based tests (test/properties.test.ts)
// and the wire tests found: each case once failed with INTERNAL, a hang, or a
// database error where validation should have answered.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { BadRequestSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { maxMessageLength, maxViolations } from "../src/grpc/errors.js";
import { grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";
import { assertNoLeaks } from "./leaks.js";

let env: TestEnv;
let userId: bigint;
const messages: string[] = [];
before(async () => {
  env = await startTestEnv();
  userId = (await env.users.createUser({ user: { name: "Owner", age: 40 } })).user!.id;
});
after(() => env.close());

const deadline = () => ({ deadline: Date.now() + 10_000 });

async function invalid(call: Promise<unknown>, message: string | RegExp) {
  const error = await grpcError(call);
  messages.push(error.details);
  assert.equal(error.code, status.INVALID_ARGUMENT, `${status[error.code]}: ${error.details}`);
  if (typeof message === "string") assert.equal(error.details, message);
  else assert.match(error.details, message);
  return error;
}

describe("names of Object.prototype's members in filter and order_by (were INTERNAL)", () => {
  for (const field of ["constructor", "__proto__", "hasOwnProperty", "toString"]) {
    it(`order_by "${field}" is INVALID_ARGUMENT`, async () => {
      const expected = new RegExp(`^order_by: cannot order by "${field}"; order by id, `);
      await invalid(env.users.listUsers({ orderBy: field }, deadline()), expected);
      await invalid(env.posts.listPosts({ orderBy: `${field} desc` }, deadline()), expected);
      const stream = env.users.exportUsers({ orderBy: field }, deadline());
      await invalid(
        (async () => {
          for await (const batch of stream) void batch;
        })(),
        expected,
      );
    });

    it(`filter on "${field}" is INVALID_ARGUMENT`, async () => {
      await invalid(
        env.users.listUsers({ filter: `${field} = 1` }, deadline()),
        new RegExp(`^filter: unknown field "${field}" at position 1; filter on id, name`),
      );
    });
  }
});

describe("a batch with a thousand bad items (the status outgrew HTTP/2 trailers: the client hung)", () => {
  it(`answers INVALID_ARGUMENT naming the first few (at most ${maxViolations}) and counting the rest`, async () => {
    const requests = Array.from({ length: 1000 }, () => ({ post: { userId: 0n, title: "" } }));
    const error = await invalid(
      env.posts.batchCreatePosts({ userId: 0n, requests }, deadline()),
      /^user_id: must be greater than 0; requests\[0\]\.post: .*; and \d+ more$/,
    );
    const [bin] = error.metadata.get("grpc-status-details-bin");
    const rich = fromBinary(StatusSchema, bin as Buffer);
    const badRequest = rich.details.map((d) => anyUnpack(d, BadRequestSchema)).find((d) => d !== undefined);
    const listed = badRequest?.fieldViolations ?? [];
    assert.ok(listed.length >= 1 && listed.length <= maxViolations, `${listed.length} violations listed`);
    assert.ok(error.details.startsWith(listed.map((v) => `${v.field}: ${v.description}`).join("; ")));
    const more = Number(/and (\d+) more$/.exec(error.details)![1]);
    assert.ok(listed.length + more > 2000, `${listed.length} + ${more} violations`);
    assert.ok(error.details.length <= maxMessageLength);
  });
});

describe("NUL characters (were refused by PostgreSQL, not by validation)", () => {
  const nul = "must not contain NUL characters (U+0000)";
  it("in a user's name", async () => {
    await invalid(env.users.createUser({ user: { name: "a\u0000b", age: 1 } }, deadline()), `user.name: ${nul}`);
    await invalid(
      env.users.updateUser({ user: { id: userId, name: "\u0000" }, updateMask: { paths: ["name"] } }, deadline()),
      `user.name: ${nul}`,
    );
  });

  it("in a post's title and content", async () => {
    await invalid(env.posts.createPost({ post: { userId, title: "t\u0000" } }, deadline()), `post.title: ${nul}`);
    await invalid(
      env.posts.createPost({ post: { userId, title: "t", content: "a\u0000" } }, deadline()),
      `post.content: ${nul}`,
    );
    await invalid(
      env.posts.batchCreatePosts({ userId, requests: [{ post: { userId, title: "ok", content: "\u0000" } }] }),
      `requests[0].post.content: ${nul}`,
    );
  });

  it("in a filter", async () => {
    await invalid(env.users.listUsers({ filter: 'name:"a\u0000b"' }, deadline()), `filter: ${nul}`);
    await invalid(env.posts.listPosts({ filter: 'title = "\u0000"' }, deadline()), `filter: ${nul}`);
  });
});

describe("white space is trimmed as the validator trims it (U+FEFF passed validation, then broke a CHECK)", () => {
  it("U+FEFF is not white space: kept", async () => {
    const { user } = await env.users.createUser({ user: { name: "\uFEFF", age: 1 } }, deadline());
    assert.equal(user?.name, "\uFEFF");
    const { post } = await env.posts.createPost({ post: { userId, title: "\uFEFFHi\uFEFF" } }, deadline());
    assert.equal(post?.title, "\uFEFFHi\uFEFF");
  });

  it("U+0085 and U+3000 are white space: trimmed, and alone they are an empty name", async () => {
    const { user } = await env.users.createUser({ user: { name: "\u0085\u3000Ada\u00A0\u0085", age: 1 } });
    assert.equal(user?.name, "Ada");
    await invalid(
      env.users.createUser({ user: { name: "\u0085\u3000", age: 1 } }, deadline()),
      "user.name: must be 1 to 200 characters after trimming white space",
    );
  });
});

describe("messages that echo a long input", () => {
  it(`stay within ${maxMessageLength} characters`, async () => {
    const error = await invalid(env.users.listUsers({ filter: "x".repeat(2000) }), /^filter: unknown field "x+…$/);
    assert.equal(error.details.length, maxMessageLength);
  });
});

it("no status message here carries SQL, a stack trace, a file path or a driver message", () => {
  assertNoLeaks(messages);
});
