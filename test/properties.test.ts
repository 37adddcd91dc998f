// Property-based tests over every RPC: random, extreme and malformed field
// values never yield INTERNAL or UNKNOWN (nor a hang or a crash), never change
// rows other than the ones the request names, and their messages leak nothing.
// FC_SEED reproduces a run (the seed is printed); FC_RUNS sets runs per RPC.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import fc from "fast-check";
import type { ClientError } from "../src/client/transport.js";
import { trimWhiteSpace } from "../src/grpc/trim.js";
import { startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";
import { assertNoLeaks, leaksIn, withoutEchoes } from "./leaks.js";

const seed = Number(process.env.FC_SEED ?? 20261125);
const numRuns = Number(process.env.FC_RUNS ?? 40);
console.log(`fast-check seed ${seed}, ${numRuns} runs per RPC (FC_SEED=${seed} reproduces this run)`);

let env: TestEnv;
const seeded = { users: [] as bigint[], posts: [] as bigint[], etags: [] as string[], tokens: [] as string[] };
/** Every failing call's message, for the leak check at the end. */
const messages: string[] = [];
/** How many calls ended with each code: the runs must reach the database, not only the validator. */
const outcomes = new Map<string, number>();

before(async () => {
  env = await startTestEnv();
  for (let u = 0; u < 4; u++) {
    const { user } = await env.users.createUser({ user: { name: `Seed ${u}`, age: 20 + u } });
    seeded.users.push(user!.id);
    seeded.etags.push(user!.etag);
    for (let p = 0; p < 2; p++) {
      const { post } = await env.posts.createPost({ post: { userId: user!.id, title: `Post ${u}.${p}` } });
      seeded.posts.push(post!.id);
      seeded.etags.push(post!.etag);
    }
  }
  seeded.tokens.push((await env.users.listUsers({ pageSize: 1 })).nextPageToken);
  seeded.tokens.push((await env.posts.listPosts({ pageSize: 1, orderBy: "title desc" })).nextPageToken);
  seeded.tokens.push((await env.users.listUsers({ pageSize: 1, filter: "age > 1" })).nextPageToken);
});
after(() => env.close());

// ---- arbitraries ----

const edgeStrings = [
  "",
  " ",
  "  padded  ",
  "\u0000",
  "a\u0000b",
  "\uD800",
  "x\uDFFFy",
  "e\u0301",
  "\u0301\u0301\u0301",
  "\u202Eevil\u202C",
  "\u200F\u200E",
  "שלום",
  "مرحبا",
  "👩‍👩‍👧‍👦",
  "🏳️‍🌈",
  "\uFEFF",
  "\u2028\u2029",
  "\u00A0",
  "\u3000",
  "\u180E",
  "\u200B",
  "\t\n\r",
  "\u0085",
  "\uFFFF",
  "\u{10FFFF}",
  "Robert'); DROP TABLE users;--",
  "' OR '1'='1",
  "1; DELETE FROM posts",
  "%",
  "_",
  "\\",
  '"',
  "'",
  "$1",
  "${x}",
  "NULL",
  "constructor",
  "__proto__",
  "toString",
];
const limitStrings = [
  "a".repeat(200),
  "a".repeat(201),
  `${" ".repeat(199)}b`,
  "t".repeat(300),
  "t".repeat(301),
  "c".repeat(100_000),
  "c".repeat(100_001),
  "é".repeat(100_000),
  "😀".repeat(50_001),
  "\u0000".repeat(2_000),
  "x".repeat(1_000_000),
];

const hostile = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
  { weight: 4, arbitrary: fc.constantFrom(...edgeStrings) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...edgeStrings), { maxLength: 5 }).map((a) => a.join("")) },
  { weight: 1, arbitrary: fc.constantFrom(...limitStrings) },
);
/**
 * mostly picks a plausible value four times in five: a request reaches the
 * database only when every field passes validation, so each field must be
 * hostile rarely enough for the hostile values that pass to get that far.
 */
const mostly = <T>(plausible: fc.Arbitrary<T>, hostileValue: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: hostileValue });
/** text is plausible text with edge characters mixed in, or hostile text. */
const text = mostly(
  fc
    .array(fc.oneof(fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }), fc.constantFrom(...edgeStrings)), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => parts.join("")),
  hostile,
);

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const extremeInt64 = fc.constantFrom(0n, -1n, 1n, int64Max, int64Min, 2n ** 31n, -(2n ** 31n), 2n ** 53n + 1n);
const anyInt64 = fc.bigInt({ min: int64Min, max: int64Max });
const userId = () => mostly(fc.constantFrom(...seeded.users), fc.oneof(extremeInt64, anyInt64));
const postId = () => mostly(fc.constantFrom(...seeded.posts), fc.oneof(extremeInt64, anyInt64));
const int32 = mostly(
  fc.integer({ min: 0, max: 150 }),
  fc.oneof(fc.constantFrom(-1, 151, 1000, 1001, 2 ** 31 - 1, -(2 ** 31)), fc.integer()),
);
const enumValue = mostly(fc.integer({ min: 0, max: 2 }), fc.oneof(fc.integer(), fc.constantFrom(3, -1, 2 ** 31 - 1)));

const fieldNames = ["id", "name", "age", "user_id", "title", "content", "create_time", "update_time", "etag", "posts"];
const filterTokens = [
  ...fieldNames,
  "constructor",
  "__proto__",
  "toString",
  "valueOf",
  "(",
  ")",
  "AND",
  "OR",
  "NOT",
  "and",
  "=",
  "!=",
  "<",
  "<=",
  ">",
  ">=",
  ":",
  "!",
  '"ada"',
  '""',
  '"a\\"b"',
  '"\\\\"',
  '"%"',
  '"_"',
  '"\u0000"',
  '"a\u0000b"',
  '"\uD800"',
  "0",
  "-1",
  "150",
  "2147483647",
  "2147483648",
  "-2147483649",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775808",
  "-9223372036854775809",
  "99999999999999999999",
  "1e3",
  "0x10",
  "1.5",
  '"2026-01-01T00:00:00Z"',
  '"2026-02-30T00:00:00Z"',
  '"0000-01-01T00:00:00Z"',
  '"9999-12-31T23:59:59.999999999+14:00"',
  '"0001-01-01T00:00:00-23:59"',
  '"2026-01-01T00:00:00+99:99"',
  '"1970-01-01T00:00:00.000000001Z"',
  "2026-01-01T00:00:00Z",
  "; DROP TABLE users; --",
  "' OR 1=1 --",
  "users.id",
  "*",
  "NULL",
  "true",
];
/** Values per field type: valid, extreme and mistyped ones. */
const literals = {
  integer: ["0", "-1", "1", "150", "2147483647", "2147483648", "9223372036854775807", "-9223372036854775808", '"7"'],
  text: ['"ada"', '""', '"a\\"b"', '"%"', '"_"', '"\\\\"', '"👩‍👩‍👧‍👦"', '"\u202Eevil"', '"\uD800"', "bare", '"e\u0301"'],
  timestamp: [
    '"2026-01-01T00:00:00Z"',
    '"0000-01-01T00:00:00Z"',
    '"9999-12-31T23:59:59.999999999+14:00"',
    '"0001-01-01T00:00:00-23:59"',
    '"1970-01-01T00:00:00.000000001Z"',
    '"2026-02-30T00:00:00Z"',
  ],
};
const listFields = {
  users: { id: "integer", name: "text", age: "integer", create_time: "timestamp", update_time: "timestamp" },
  posts: {
    id: "integer",
    user_id: "integer",
    title: "text",
    content: "text",
    create_time: "timestamp",
    update_time: "timestamp",
  },
} as const;
type Resource = keyof typeof listFields;
const comparison = (resource: Resource) =>
  fc
    .constantFrom(...Object.entries(listFields[resource]))
    .chain(([field, type]) =>
      fc
        .tuple(
          fc.constantFrom(...(type === "text" ? ["=", "!=", "<", ">=", ":"] : ["=", "!=", "<", "<=", ">", ">="])),
          fc.constantFrom(...literals[type]),
        )
        .map(([op, value]) => `${field} ${op} ${value}`),
    );
/** filter: well-formed filters (some deeply nested) most of the time, token soup and hostile text otherwise. */
const filter = (resource: Resource) =>
  mostly(
    fc.oneof(
      { weight: 2, arbitrary: fc.constant("") },
      {
        weight: 4,
        arbitrary: fc
          .array(fc.tuple(comparison(resource), fc.constantFrom(" AND ", " OR ", " ", " AND NOT ")), {
            minLength: 1,
            maxLength: 4,
          })
          .map((terms) => terms.map(([c, j], i) => (i === 0 ? c : `${j}${c}`)).join("")),
      },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 495 }).map((n) => `${"NOT ".repeat(n)}id = 1`) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 200 }).map((n) => Array(n).fill("id = 1").join(" OR ")) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 60 }).map((n) => `${"(".repeat(n)}id = 1${")".repeat(n)}`) },
    ),
    fc.oneof(
      hostile,
      fc.array(fc.constantFrom(...filterTokens), { maxLength: 12 }).map((t) => t.join(" ")),
      fc.array(fc.constantFrom(...filterTokens), { maxLength: 12 }).map((t) => t.join("")),
    ),
  );
/** orderBy: orders over real fields most of the time, unknown fields, bad directions and hostile text otherwise. */
const orderBy = mostly(
  fc.oneof(
    fc.constant(""),
    fc
      .subarray(["id", "create_time", "update_time"])
      .chain((fields) => fc.tuple(...fields.map((f) => fc.constantFrom(f, `${f} desc`, `${f} asc`))))
      .map((terms) => terms.join(", ")),
  ),
  fc.oneof(
    hostile,
    fc
      .array(
        fc.tuple(
          fc.constantFrom(...fieldNames, "constructor", "__proto__", "hasOwnProperty", "id; DROP TABLE users", "1"),
          fc.constantFrom("", " desc", " asc", " DESC", " desc desc", " ;", "  desc "),
        ),
        { maxLength: 6 },
      )
      .map((terms) => terms.map(([f, d]) => f + d).join(", ")),
  ),
);
const pageToken = () =>
  fc.oneof(
    { weight: 24, arbitrary: fc.constant("") },
    { weight: 2, arbitrary: hostile },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 96 }).map((b) => Buffer.from(b).toString("base64url")) },
    { weight: 2, arbitrary: fc.constantFrom(...seeded.tokens) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...seeded.tokens), fc.nat(), fc.constantFrom("A", "_", "-", "=", "\u0000"))
        .map(([t, i, c]) => t.slice(0, i % t.length) + c + t.slice((i % t.length) + 1)),
    },
  );
const etag = () =>
  mostly(
    fc.oneof(fc.constant(""), fc.constantFrom(...seeded.etags)),
    fc.oneof(
      fc.constantFrom("v1", "v0", "v2", "v-1", "V1", "v01", "v999999999999999999", "v9223372036854775807", "1"),
      hostile,
    ),
  );
const requestId = mostly(
  fc.oneof(fc.constant(""), fc.uuid()),
  fc.oneof(
    fc.constantFrom(
      "00000000-0000-0000-0000-000000000000",
      "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF",
      "{01234567-89ab-cdef-0123-456789abcdef}",
      "0123456789abcdef0123456789abcdef",
      "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
    ),
    hostile,
  ),
);
const maskPaths = (valid: string[]) =>
  mostly(
    fc.subarray(valid),
    fc.array(
      fc.oneof(
        fc.constantFrom(...fieldNames, "", "*", "name,age", "user.name", "posts.title", "NAME", "title "),
        hostile,
      ),
      { maxLength: 4 },
    ),
  );
const userView = enumValue;

// ---- checking one call ----

type Rows = Map<bigint, Record<string, unknown>>;
interface Snapshot {
  users: Rows;
  posts: Rows;
}

async function snapshot(): Promise<Snapshot> {
  const byId = (rows: Record<string, unknown>[]) => new Map(rows.map((r) => [BigInt(r.id as bigint), r]));
  return {
    users: byId(await env.db("users").orderBy("id")),
    posts: byId(await env.db("posts").orderBy("id")),
  };
}

/**
 * Footprint says which rows a request names: rows it may change (only in the
 * listed columns) or delete, and rows it may insert (at most `maxInserts`).
 */
interface Footprint {
  users?: TableFootprint;
  posts?: TableFootprint;
}
interface TableFootprint {
  change?: (row: Record<string, unknown>) => boolean;
  columns?: string[];
  remove?: (row: Record<string, unknown>) => boolean;
  insert?: (row: Record<string, unknown>) => boolean;
  maxInserts?: number;
}

function compareTable(table: string, before: Rows, after: Rows, fp: TableFootprint = {}) {
  for (const [id, row] of before) {
    const now = after.get(id);
    if (now === undefined) {
      assert.ok(fp.remove?.(row), `${table} ${id} was deleted though the request does not name it`);
      continue;
    }
    if (fp.change?.(row)) {
      const changed = Object.keys(row).filter((k) => String(row[k]) !== String(now[k]));
      const allowed = new Set([...(fp.columns ?? []), "version", "updateTime"]);
      assert.deepEqual(
        changed.filter((k) => !allowed.has(k)),
        [],
        `${table} ${id} changed only in ${[...allowed].join(", ")}`,
      );
    } else {
      assert.deepEqual(now, row, `${table} ${id} is unchanged`);
    }
  }
  const inserted = [...after.values()].filter((r) => !before.has(BigInt(r.id as bigint)));
  assert.ok(inserted.length <= (fp.maxInserts ?? 0), `${table}: ${inserted.length} rows inserted`);
  for (const row of inserted) assert.ok(fp.insert?.(row), `${table} ${String(row.id)} is one the request named`);
}

const badCodes = new Set([
  status.INTERNAL,
  status.UNKNOWN,
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.DATA_LOSS,
  status.UNIMPLEMENTED,
]);

/** A database constraint, not validation, refused the input: validation missed a rule. */
const validationGap = /violates a check constraint|misses a required value|holds a value the database cannot store/;

async function check(call: () => Promise<unknown>, footprint: Footprint = {}): Promise<void> {
  const before = await snapshot();
  let error: ClientError | undefined;
  try {
    await call();
  } catch (e) {
    error = e as ClientError;
  }
  const code = error === undefined ? "OK" : status[error.code];
  outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
  if (error !== undefined) {
    assert.equal(typeof error.code, "number", `a gRPC status, not ${String(error)}`);
    assert.ok(!badCodes.has(error.code), `${status[error.code]}: ${error.details}`);
    assert.doesNotMatch(error.details, validationGap, "the validator, not the database, refuses bad input");
    messages.push(error.details);
  }
  const after = await snapshot();
  compareTable("users", before.users, after.users, footprint.users);
  compareTable("posts", before.posts, after.posts, footprint.posts);
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const message of stream) void message;
}

const deadline = () => ({ deadline: Date.now() + 15_000 });

async function property<T>(arbitrary: fc.Arbitrary<T>, run: (value: T) => Promise<void>) {
  await fc.assert(fc.asyncProperty(arbitrary, run), { seed, numRuns, includeErrorInReport: true });
}

/** wire is a string as the server receives it: UTF-8 has no lone surrogates, they arrive as U+FFFD. */
const wire = (text: string) => Buffer.from(text).toString();
const sameId = (id: bigint) => (row: Record<string, unknown>) => BigInt(row.id as bigint) === id;
const ownedBy = (id: bigint) => (row: Record<string, unknown>) => BigInt(row.userId as bigint) === id;

// ---- the properties ----

describe("UserService never fails badly on hostile input", () => {
  it("CreateUser", async () => {
    const post = fc.record({ userId: userId(), title: text }, { requiredKeys: [] });
    const user = fc.record(
      { id: userId(), name: text, age: int32, etag: etag(), posts: fc.array(post, { maxLength: 2 }) },
      { requiredKeys: [] },
    );
    await property(fc.record({ user: fc.option(user, { nil: undefined }), requestId }), (request) =>
      check(() => env.users.createUser(request, deadline()), {
        users: { maxInserts: 1, insert: (row) => row.name === trimWhiteSpace(wire(request.user?.name ?? "")) },
      }),
    );
  });

  it("GetUser", async () => {
    await property(fc.record({ id: userId(), view: userView }), (request) =>
      check(() => env.users.getUser(request, deadline())),
    );
  });

  it("UpdateUser", async () => {
    const user = fc.record({ id: userId(), name: text, age: int32, etag: etag() }, { requiredKeys: ["id"] });
    const mask = fc.option(fc.record({ paths: maskPaths(["name", "age"]) }), { nil: undefined });
    await property(fc.record({ user, updateMask: mask }), (request) =>
      check(() => env.users.updateUser(request, deadline()), {
        users: { change: sameId(request.user.id), columns: ["name", "age"] },
      }),
    );
  });

  it("CountUsers", async () => {
    await property(fc.constant({}), (request) => check(() => env.users.countUsers(request, deadline())));
  });

  it("ListUsers", async () => {
    const request = fc.record({
      pageSize: int32,
      pageToken: pageToken(),
      filter: filter("users"),
      orderBy,
      view: userView,
      totalSizeMode: enumValue,
    });
    await property(request, (r) => check(() => env.users.listUsers(r, deadline())));
  });

  it("BatchGetUsers", async () => {
    const ids = fc.oneof(
      fc.array(userId(), { maxLength: 6 }),
      fc.constantFrom(1000, 1001).map((n) => Array.from({ length: n }, (_, i) => seeded.users[i % 4]!)),
    );
    await property(fc.record({ ids, view: userView }), (request) =>
      check(() => env.users.batchGetUsers(request, deadline())),
    );
  });

  it("ExportUsers", async () => {
    await property(fc.record({ filter: filter("users"), orderBy }), (request) =>
      check(() => drain(env.users.exportUsers(request, deadline()))),
    );
  });
});

describe("PostService never fails badly on hostile input", () => {
  const post = () =>
    fc.record(
      { id: postId(), userId: userId(), title: text, content: fc.oneof(text, fc.constant("")), etag: etag() },
      { requiredKeys: [] },
    );

  it("CreatePost", async () => {
    await property(fc.record({ post: fc.option(post(), { nil: undefined }), requestId }), (request) =>
      check(() => env.posts.createPost(request, deadline()), {
        posts: { maxInserts: 1, insert: ownedBy(request.post?.userId ?? 0n) },
      }),
    );
  });

  it("GetPost", async () => {
    await property(fc.record({ id: postId() }), (request) => check(() => env.posts.getPost(request, deadline())));
  });

  it("UpdatePost", async () => {
    const mask = fc.option(fc.record({ paths: maskPaths(["title", "content"]) }), { nil: undefined });
    await property(fc.record({ post: post(), updateMask: mask }), (request) =>
      check(() => env.posts.updatePost(request, deadline()), {
        posts: { change: sameId(request.post.id ?? 0n), columns: ["title", "content"] },
      }),
    );
  });

  it("ListPosts", async () => {
    const request = fc.record({
      userId: userId(),
      pageSize: int32,
      pageToken: pageToken(),
      filter: filter("posts"),
      orderBy,
      totalSizeMode: enumValue,
    });
    await property(request, (r) => check(() => env.posts.listPosts(r, deadline())));
  });

  it("BatchCreatePosts", async () => {
    const batchPost = (owner: bigint) =>
      mostly(
        fc.record({ userId: fc.constant(owner), title: text, content: text }),
        fc.option(fc.record({ userId: userId(), title: text }, { requiredKeys: [] }), { nil: undefined }),
      );
    const request = userId().chain((owner) =>
      fc.record({
        userId: fc.constant(owner),
        requests: fc.oneof(
          { weight: 9, arbitrary: fc.array(fc.record({ post: batchPost(owner), requestId }), { maxLength: 5 }) },
          {
            weight: 1,
            arbitrary: fc
              .constantFrom(1000, 1001)
              .map((n) => Array.from({ length: n }, (_, i) => ({ post: { userId: owner, title: `bulk ${i}` } }))),
          },
        ),
      }),
    );
    await property(request, (r) =>
      check(() => env.posts.batchCreatePosts(r, deadline()), {
        posts: { maxInserts: r.requests.length, insert: ownedBy(r.userId) },
      }),
    );
  });

  it("ExportPosts", async () => {
    await property(fc.record({ userId: userId(), filter: filter("posts"), orderBy }), (request) =>
      check(() => drain(env.posts.exportPosts(request, deadline()))),
    );
  });
});

describe("deletes never fail badly on hostile input (last: they remove the seeded rows)", () => {
  it("DeletePost", async () => {
    await property(fc.record({ id: postId(), etag: etag() }), (request) =>
      check(() => env.posts.deletePost(request, deadline()), { posts: { remove: sameId(request.id) } }),
    );
  });

  it("DeleteUser", async () => {
    await property(fc.record({ id: userId(), etag: etag() }), (request) =>
      check(() => env.users.deleteUser(request, deadline()), {
        users: { remove: sameId(request.id) },
        posts: { remove: ownedBy(request.id) },
      }),
    );
  });
});

describe("after the hostile input", () => {
  it("the service still serves", async () => {
    const { user } = await env.users.createUser({ user: { name: "Still here", age: 1 } });
    assert.equal((await env.users.getUser({ id: user!.id })).user?.name, "Still here");
    assert.equal((await env.health.check({ service: "" })).status, 1);
  });

  it("the runs reached the database: many calls succeeded, many were refused", () => {
    console.log(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    const calls = [...outcomes.values()].reduce((a, b) => a + b, 0);
    assert.ok((outcomes.get("OK") ?? 0) > calls / 4, "a quarter of the calls succeed");
    assert.ok((outcomes.get("INVALID_ARGUMENT") ?? 0) > calls / 10, "a tenth are refused as invalid");
    assert.ok((outcomes.get("NOT_FOUND") ?? 0) > 0, "some name missing rows");
  });

  it("no status message carries SQL, a stack trace, a file path or a driver message", () => {
    assert.ok(messages.length > 100, `${messages.length} failures were collected`);
    assertNoLeaks(messages.map(withoutEchoes));
  });

  it("the leak check itself catches each kind of leak", () => {
    const caught = [
      'insert into "users" ("age", "name") values ($1, $2) returning *',
      "DBError: boom\n    at wrapError (/work/main/node_modules/db-errors/lib/dbErrors.js:19:14)",
      "failed in src/users/repository.ts:42",
      'duplicate key value violates unique constraint "users_pkey"',
      "connect ECONNREFUSED 127.0.0.1:5432",
      "Knex: Timeout acquiring a connection. The pool is probably full.",
    ].map((m) => leaksIn(withoutEchoes(m)));
    for (const leaks of caught) assert.ok(leaks.length > 0);
    assert.deepEqual(leaksIn(withoutEchoes('filter: unknown field "select * from users" at position 1')), []);
    assert.deepEqual(leaksIn("the request could not reach the database; retry"), []);
  });
});
