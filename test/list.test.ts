import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { TotalSizeMode } from "../gen/blog/v1/list_pb.js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListUsersRequestSchema } from "../gen/blog/v1/user_service_pb.js";
import { countStatements, grpcError, startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

interface Row {
  id: bigint;
  name: string;
  age: number;
  createTime: Date;
  updateTime: Date;
}

let env: TestEnv;
let rows: Row[] = [];
const base = Date.parse("2026-01-01T00:00:00Z");
const names = ["Ada", "Alan", "Barbara", "Edsger", "Grace", "Ken", "Linus", "Margaret", "O'Brien", 'Quote"d'];

before(async () => {
  env = await startTestEnv();
  const seed = Array.from({ length: 2500 }, (_, i) => ({
    name: `${names[i % names.length]} ${i % 7}`,
    age: (i * 37) % 151,
    createTime: new Date(base + ((i * 7919) % 2500) * 1000),
    updateTime: new Date(base + ((i * 104729) % 900) * 1000),
  }));
  for (let i = 0; i < seed.length; i += 500) await env.db("users").insert(seed.slice(i, i + 500));
  await env.db.raw("ANALYZE users");
  rows = await env.db("users").select("id", "name", "age", "createTime", "updateTime");
});
after(() => env.close());

type Request = MessageInitShape<typeof ListUsersRequestSchema>;

async function listAll(request: Request, between?: () => Promise<void>): Promise<bigint[]> {
  const ids: bigint[] = [];
  let pageToken = "";
  do {
    const page = await env.users.listUsers({ ...request, pageToken });
    ids.push(...page.users.map((u) => u.id));
    pageToken = page.nextPageToken;
    await between?.();
  } while (pageToken !== "");
  return ids;
}

const compare = {
  id: (a: Row, b: Row) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  name: (a: Row, b: Row) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  age: (a: Row, b: Row) => a.age - b.age,
  create_time: (a: Row, b: Row) => a.createTime.getTime() - b.createTime.getTime(),
  update_time: (a: Row, b: Row) => a.updateTime.getTime() - b.updateTime.getTime(),
};

function expectedOrder(orderBy: string, keep: (r: Row) => boolean = () => true): bigint[] {
  const terms = orderBy === "" ? [] : orderBy.split(",").map((t) => t.trim().split(/\s+/));
  const sorted = rows.filter(keep).sort((a, b) => {
    for (const [field, direction] of terms) {
      const c = compare[field as keyof typeof compare](a, b);
      if (c !== 0) return direction === "desc" ? -c : c;
    }
    return compare.id(a, b);
  });
  return sorted.map((r) => r.id);
}

describe("ListUsers paging", () => {
  // The database's collation orders names; compare against the database's own order for those.
  const orders = ["", "age desc", "age desc, name", "create_time desc", "update_time, age desc", "name desc, age"];
  for (const orderBy of orders) {
    for (const pageSize of [0, 97, 1000]) {
      it(`yields each user exactly once, in order "${orderBy}", pages of ${pageSize || "50 (default)"}`, async () => {
        const ids = await listAll({ orderBy, pageSize });
        assert.equal(new Set(ids).size, ids.length, "no user repeated");
        assert.equal(ids.length, rows.length, "no user skipped");
        if (!orderBy.includes("name")) assert.deepEqual(ids, expectedOrder(orderBy));
        else {
          const sql = await env.db("users").select("id").orderByRaw(`${orderBy}, id`);
          assert.deepEqual(
            ids,
            sql.map((r: { id: bigint }) => r.id),
          );
        }
      });
    }
  }

  it("pages one row at a time through a filtered list", async () => {
    const ids = await listAll({ filter: "age = 42", pageSize: 1 });
    assert.deepEqual(
      ids,
      expectedOrder("", (r) => r.age === 42),
    );
    assert.ok(ids.length > 5);
  });

  it("lowers page sizes above 1000 to 1000 and rejects negative ones", async () => {
    const page = await env.users.listUsers({ pageSize: 5000 });
    assert.equal(page.users.length, 1000);
    const error = await grpcError(env.users.listUsers({ pageSize: -1 }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "page_size: must be greater than or equal to 0");
  });

  it("stays stable under concurrent inserts: every user that existed is listed exactly once", async () => {
    const before = new Set(rows.map((r) => r.id));
    let inserted = 0;
    const ids = await listAll({ orderBy: "age desc, name", pageSize: 100 }, async () => {
      await env.db("users").insert([
        { name: "Late", age: 0 },
        { name: "Zed", age: 150 },
        { name: "Mid", age: 75 },
      ]);
      inserted += 3;
    });
    const seen = ids.filter((id) => before.has(id));
    assert.equal(seen.length, before.size);
    assert.equal(new Set(seen).size, before.size);
    assert.ok(inserted > 0);
    await env.db("users").whereIn("name", ["Late", "Zed", "Mid"]).del();
  });

  it("binds a token to its filter and order, and refuses tokens it did not issue", async () => {
    const { nextPageToken } = await env.users.listUsers({ orderBy: "age", pageSize: 10 });
    assert.notEqual(nextPageToken, "");
    const decoded = Buffer.from(nextPageToken, "base64url").toString("latin1");
    assert.ok(!decoded.includes("age") && !decoded.includes("users"), "the token is opaque");
    assert.throws(() => JSON.parse(decoded), "the token is not readable JSON");
    const reordered = await grpcError(env.users.listUsers({ orderBy: "name", pageToken: nextPageToken }));
    assert.equal(reordered.code, status.INVALID_ARGUMENT);
    assert.match(reordered.details, /^page_token: was issued for another filter, order_by or parent/);
    const refiltered = await grpcError(
      env.users.listUsers({ orderBy: "age", filter: "age > 3", pageToken: nextPageToken }),
    );
    assert.equal(refiltered.code, status.INVALID_ARGUMENT);
    const forged = await grpcError(
      env.users.listUsers({ pageToken: Buffer.from('{"after":[1]}').toString("base64url") }),
    );
    assert.equal(forged.code, status.INVALID_ARGUMENT);
    assert.match(forged.details, /^page_token: is not a token this service issued/);
    const tampered = nextPageToken.slice(0, -2) + (nextPageToken.endsWith("AA") ? "BB" : "AA");
    assert.equal(
      (await grpcError(env.users.listUsers({ orderBy: "age", pageToken: tampered }))).code,
      status.INVALID_ARGUMENT,
    );
  });

  it("rejects fields outside the order_by whitelist and malformed terms", async () => {
    for (const [orderBy, message] of [
      ["email", /^order_by: cannot order by "email"; order by id, name, age, create_time, update_time$/],
      ["age sideways", /^order_by: "age sideways" is not "field" or "field desc"$/],
      ["age, age desc", /"age" appears twice/],
      ["age; DROP TABLE users", /cannot order by "age;"|is not "field"/],
    ] as const) {
      const error = await grpcError(env.users.listUsers({ orderBy }));
      assert.equal(error.code, status.INVALID_ARGUMENT, orderBy);
      assert.match(error.details, message);
    }
  });
});

describe("ListUsers filters", () => {
  const t0 = new Date(base + 1000 * 1000);
  const cases: [string, (r: Row) => boolean][] = [
    ["age = 42", (r) => r.age === 42],
    ["age != 42", (r) => r.age !== 42],
    ["age < 10", (r) => r.age < 10],
    ["age <= 10", (r) => r.age <= 10],
    ["age > 140", (r) => r.age > 140],
    ["age >= 140", (r) => r.age >= 140],
    ["id <= 0", () => false],
    ['name = "Ada 0"', (r) => r.name === "Ada 0"],
    ['name:"brien"', (r) => r.name.toLowerCase().includes("brien")],
    ['name:"%"', (r) => r.name.includes("%")],
    ['name:"_"', (r) => r.name.includes("_")],
    [`create_time >= "${t0.toISOString()}"`, (r) => r.createTime >= t0],
    [`update_time < "${t0.toISOString()}" AND age > 100`, (r) => r.updateTime < t0 && r.age > 100],
    ['age < 5 OR age > 145 name:"a"', (r) => (r.age < 5 || r.age > 145) && r.name.toLowerCase().includes("a")],
    ["NOT age < 140", (r) => !(r.age < 140)],
    ['(age < 5 AND name:"Ken") OR age = 150', (r) => (r.age < 5 && r.name.includes("Ken")) || r.age === 150],
    ['name = "Quote\\"d 1"', (r) => r.name === 'Quote"d 1'],
    [`name = "O'Brien 2"`, (r) => r.name === "O'Brien 2"],
  ];
  for (const [filter, keep] of cases) {
    it(`filter ${filter}`, async () => {
      const ids = await listAll({ filter, pageSize: 1000 });
      assert.deepEqual(ids, expectedOrder("", keep));
    });
  }

  it("treats hostile text as a literal or rejects it, and leaves the table intact", async () => {
    const literal = await env.users.listUsers({ filter: `name = "'; DROP TABLE users; --"` });
    assert.deepEqual(literal.users, []);
    const hostile = [
      "age = 1; DROP TABLE users",
      "age = 1 OR 1=1",
      "name = Ada' OR '1'='1",
      "age = (SELECT 1)",
      "age = 1 UNION SELECT * FROM pg_user",
      `name = "${"x".repeat(1990)}`,
      "x".repeat(2001),
    ];
    for (const filter of hostile) {
      const error = await grpcError(env.users.listUsers({ filter }));
      assert.equal(error.code, status.INVALID_ARGUMENT, filter.slice(0, 40));
      assert.match(error.details, /^filter: /);
    }
    assert.equal((await env.users.countUsers({})).count, BigInt(rows.length));
  });

  it("rejects a malformed filter pointing at the position", async () => {
    const error = await grpcError(env.users.listUsers({ filter: "age > 3 AND (name = " }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "filter: expected a value for name at the end");
  });
});

describe("ListUsers views and totals", () => {
  it("FULL loads posts in a fixed number of statements whatever the page size, capped per user", async () => {
    const [heavy] = rows;
    const posts = Array.from({ length: 150 }, (_, i) => ({ userId: heavy!.id, title: `p${i}` }));
    await env.db("posts").insert(posts);
    await env.users.listUsers({ pageSize: 1 });
    const counts: number[] = [];
    for (const pageSize of [10, 200]) {
      const statements = await countStatements(env.db, async () => {
        const page = await env.users.listUsers({ pageSize, view: UserView.FULL });
        assert.equal(page.users.length, pageSize);
        assert.equal(page.users[0]?.posts.length, 100, "at most 100 posts per user in a list");
        assert.deepEqual(
          page.users[0]?.posts.slice(0, 3).map((p) => p.title),
          ["p0", "p1", "p2"],
        );
      });
      counts.push(statements.length);
    }
    // One statement: the page, its users' posts and the change feed's head (the watch_token), one snapshot.
    assert.deepEqual(counts, [1, 1]);
    await env.db("posts").where("user_id", String(heavy!.id)).del();
  });

  it("FULL lists each user's posts as GetUser FULL reads them", async () => {
    const [a, b, c] = rows;
    await env.posts.batchCreatePosts({
      userId: a!.id,
      requests: ["first", "  second  ", "thïrd 💡", 'quote " \\ and\nnewline'].map((title) => ({
        post: { userId: a!.id, title, content: `${title} body` },
      })),
    });
    await env.posts.createPost({ post: { userId: c!.id, title: "of c", content: "" } });
    await env
      .db("posts")
      .where("user_id", String(c!.id))
      .update({ createTime: new Date("2001-02-03T04:05:06.789Z") });
    const page = await env.users.listUsers({ pageSize: 3, view: UserView.FULL, filter: `id >= ${a!.id}` });
    assert.deepEqual(
      page.users.map((u) => u.id),
      [a!.id, b!.id, c!.id],
    );
    const { users } = await env.users.batchGetUsers({ ids: [a!.id, b!.id, c!.id], view: UserView.FULL });
    assert.deepEqual(page.users, users);
    assert.deepEqual(
      page.users.map((u) => u.posts.length),
      [4, 0, 1],
    );
    await env
      .db("posts")
      .whereIn("user_id", [String(a!.id), String(c!.id)])
      .del();
  });

  it("BASIC and ListPosts are one statement each, the watch_token's head included", async () => {
    for (const list of [
      () => env.users.listUsers({ pageSize: 20 }),
      () => env.users.listUsers({ pageSize: 20, filter: "id < 0" }),
      () => env.posts.listPosts({ pageSize: 20 }),
      () => env.posts.listPosts({ pageSize: 20, userId: rows[0]!.id }),
    ]) {
      let token = "";
      const statements = await countStatements(env.db, async () => {
        token = (await list()).watchToken;
      });
      assert.equal(statements.length, 1, statements.join("\n"));
      assert.notEqual(token, "");
    }
  });

  it("computes total_size exactly or as the planner's estimate, only when asked", async () => {
    const none = await env.users.listUsers({ pageSize: 1 });
    assert.equal(none.totalSize, undefined);
    const exact = await env.users.listUsers({ pageSize: 1, filter: "age < 10", totalSizeMode: TotalSizeMode.EXACT });
    assert.equal(exact.totalSize, BigInt(rows.filter((r) => r.age < 10).length));
    const all = await env.users.listUsers({ pageSize: 1, totalSizeMode: TotalSizeMode.ESTIMATED });
    assert.ok(all.totalSize !== undefined && all.totalSize > 2000n && all.totalSize < 3000n, `${all.totalSize}`);
  });
});

describe("ListPosts", () => {
  it("lists one user's posts or all, with filters on title and content", async () => {
    const [a, b] = rows;
    await env.posts.batchCreatePosts({
      userId: a!.id,
      requests: ["alpha", "beta", "gamma"].map((title) => ({
        post: { userId: a!.id, title, content: `about ${title}` },
      })),
    });
    await env.posts.createPost({ post: { userId: b!.id, title: "alpha too", content: "x" } });
    const mine = await env.posts.listPosts({ userId: a!.id });
    assert.deepEqual(
      mine.posts.map((p) => p.title),
      ["alpha", "beta", "gamma"],
    );
    const alphas = await env.posts.listPosts({ filter: 'title:"alpha"', orderBy: "title desc" });
    assert.deepEqual(
      alphas.posts.map((p) => p.title),
      ["alpha too", "alpha"],
    );
    const content = await env.posts.listPosts({
      userId: a!.id,
      filter: 'content:"GAM"',
      totalSizeMode: TotalSizeMode.EXACT,
    });
    assert.deepEqual(
      content.posts.map((p) => p.title),
      ["gamma"],
    );
    assert.equal(content.totalSize, 1n);
    const page = await env.posts.listPosts({ userId: a!.id, pageSize: 2 });
    const other = await grpcError(env.posts.listPosts({ userId: b!.id, pageSize: 2, pageToken: page.nextPageToken }));
    assert.equal(other.code, status.INVALID_ARGUMENT, "a token is bound to its parent user");
  });
});

describe("page tokens", () => {
  it("accepts back every token it issues, also after a name of 200 emoji or a title of 300", async () => {
    const emoji = "\u{1F600}";
    const names = [emoji.repeat(200), `${emoji.repeat(199)}!`];
    const created = await Promise.all(names.map((name) => env.users.createUser({ user: { name, age: 1 } })));
    const filter = `name:"${emoji}"`;
    const first = await env.users.listUsers({ filter, orderBy: "name desc", pageSize: 1 });
    assert.ok(first.nextPageToken.length > 1024, `a ${first.nextPageToken.length}-character token`);
    const second = await env.users.listUsers({
      filter,
      orderBy: "name desc",
      pageSize: 1,
      pageToken: first.nextPageToken,
    });
    assert.deepEqual([...first.users, ...second.users].map((u) => u.name).sort(), [...names].sort());

    const userId = created[0]!.user!.id;
    const titles = [emoji.repeat(300), "after"];
    for (const title of titles) await env.posts.createPost({ post: { userId, title } });
    // One of the two orders puts the long title first, so its token is the long one.
    const tokens: string[] = [];
    for (const orderBy of ["title desc", "title"]) {
      const page = await env.posts.listPosts({ userId, orderBy, pageSize: 1 });
      tokens.push(page.nextPageToken);
      const rest = await env.posts.listPosts({ userId, orderBy, pageSize: 1, pageToken: page.nextPageToken });
      assert.deepEqual([...page.posts, ...rest.posts].map((p) => p.title).sort(), [...titles].sort());
      assert.equal(rest.nextPageToken, "");
    }
    assert.ok(Math.max(...tokens.map((t) => t.length)) > 1024, `tokens of ${tokens.map((t) => t.length).join(", ")}`);
  });
});
