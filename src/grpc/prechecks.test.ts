import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { BatchCreatePostsRequestSchema } from "../../gen/blog/v1/post_service_pb.js";
import type { BatchCreatePostsRequest } from "../../gen/blog/v1/post_service_pb.js";
import { prechecks, rulesFingerprint, writtenPrechecks } from "./prechecks.js";

const validator = createValidator();
const batchPrecheck = prechecks.get(BatchCreatePostsRequestSchema.typeName)!;

/** random is a seeded generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Characters at the edges of the rules: white space of every kind CEL's trim() knows and some it
// does not (U+FEFF), NUL, a two-unit (astral) character, non-ASCII letters, plain ASCII.
const alphabet = [
  "a",
  "Z",
  "~",
  "!",
  " ",
  "\t",
  "\n",
  "\u00a0",
  "\u0085",
  "\u2028",
  "\u3000",
  "\uFEFF",
  "\0",
  "é",
  "💡",
];
const titles = [
  "",
  " ",
  "a",
  " a",
  "a ",
  "\u00a0a",
  "a\u2028",
  "\uFEFFa",
  "a\0b",
  "\0a",
  "é",
  "Été",
  "日本語",
  "💡 idea",
  "\u0085",
  "\u3000 ",
  "\u2029",
  "\uFEFF",
  "a".repeat(300),
  "a".repeat(301),
  ` ${"a".repeat(300)} `,
  `a${"💡".repeat(149)}a`,
  "💡".repeat(150),
  `a${"💡".repeat(200)}a`,
];
const contents = ["", "x", "\0", "a".repeat(100_000), "a".repeat(100_001), "💡".repeat(50_001)];
const uuid = "0b7f1a52-6c1e-4d9e-9a43-2f0e8f3b7c11";

function text(next: () => number, pool: string[]): string {
  if (next() < 0.5) return pool[Math.floor(next() * pool.length)]!;
  const long = next() < 0.3;
  const length = long ? 295 + Math.floor(next() * 12) : Math.floor(next() * 6);
  let s = "";
  for (let i = 0; i < length; i++) s += next() < 0.8 ? "a" : alphabet[Math.floor(next() * alphabet.length)]!;
  return s;
}

/** request is an ordinary batch with one post (or the batch itself) at the edge of a rule. */
function request(next: () => number): BatchCreatePostsRequest {
  const pick = <T>(options: T[]) => options[Math.floor(next() * options.length)]!;
  const userId = next() < 0.05 ? pick([0n, -1n]) : pick([1n, 7n, 2n ** 63n - 1n]);
  const count = next() < 0.05 ? pick([0, 1001]) : pick([1, 2, 3, 1000]);
  const r = create(BatchCreatePostsRequestSchema, {
    userId,
    requestId: next() < 0.1 ? pick([uuid, uuid.toUpperCase(), "not-a-uuid", ` ${uuid}`]) : "",
    requests: Array.from({ length: count }, (_, i) => ({ post: { userId, title: `Post ${i}`, content: "x" } })),
  });
  const edge = r.requests[Math.floor(next() * count)];
  if (edge !== undefined && next() < 0.8) {
    const kind = next();
    if (kind < 0.4) edge.post!.title = text(next, titles);
    else if (kind < 0.8) edge.post!.content = text(next, contents);
    else if (kind < 0.9) edge.post!.userId = pick([userId + 1n, 0n]);
    else if (kind < 0.95) edge.post = undefined;
    else edge.requestId = pick([uuid, "x"]);
  }
  return r;
}

describe("prechecks", () => {
  it("are written against the rules the protos declare", () => {
    for (const check of writtenPrechecks) {
      assert.equal(
        rulesFingerprint(check.schema),
        check.rules,
        `the protovalidate rules of ${check.schema.typeName} changed: review its precheck, then update its fingerprint`,
      );
    }
    assert.equal(prechecks.size, writtenPrechecks.length);
  });

  it("accept a BatchCreatePosts only when protovalidate finds it valid", () => {
    const next = random(20261204);
    let accepted = 0;
    let valid = 0;
    for (let i = 0; i < 800; i++) {
      const r = request(next);
      const verdict = validator.validate(BatchCreatePostsRequestSchema, r).kind;
      if (verdict === "valid") valid++;
      if (batchPrecheck.accepts(r)) {
        accepted++;
        assert.equal(
          verdict,
          "valid",
          JSON.stringify(r, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v)),
        );
      }
    }
    // The corpus has both kinds, and the precheck is not a no-op.
    assert.ok(accepted > 50 && valid > accepted && valid < 800, `accepted ${accepted}, valid ${valid}`);
  });

  it("accept ordinary batches, with or without a request_id", () => {
    const posts = (userId: bigint) =>
      Array.from({ length: 1000 }, (_, i) => ({ post: { userId, title: `Post ${i}: on (x) & y!`, content: "x\ny" } }));
    assert.ok(batchPrecheck.accepts(create(BatchCreatePostsRequestSchema, { userId: 7n, requests: posts(7n) })));
    assert.ok(
      batchPrecheck.accepts(
        create(BatchCreatePostsRequestSchema, { userId: 7n, requests: posts(7n), requestId: uuid }),
      ),
    );
  });
});
