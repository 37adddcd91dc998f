import { BlogClientError, UserView, createBlogClient, status } from "./client/index.js";

// `npm run demo`: the original teaching demo's walk-through, done through the
// gRPC API with the client SDK (src/client) against a running service (npm start).
const address = process.env.GRPC_ADDRESS || "127.0.0.1:50051";
const { users, posts, close } = createBlogClient(address, { defaultDeadlineMs: 5_000 });
const step = (text: string, value?: unknown) =>
  console.log(
    value === undefined ? text : `${text}: ${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}` : v))}`,
  );

async function gone(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "still there";
  } catch (error) {
    if (!(error instanceof BlogClientError) || error.code !== status.NOT_FOUND) throw error;
    return `NOT_FOUND (${error.details})`;
  }
}

try {
  const { user } = await users.createUser({ user: { name: "Ada Lovelace", age: 36 } });
  if (user === undefined) throw new Error("CreateUser returned no user");
  step("1. created user", { id: user.id, name: user.name, age: user.age });
  const { post } = await posts.createPost({
    post: { userId: user.id, title: "Notes on the Analytical Engine", content: "It weaves algebraic patterns." },
  });
  if (post === undefined) throw new Error("CreatePost returned no post");
  step("2. created post", { id: post.id, userId: post.userId, title: post.title });
  const full = await users.getUser({ id: user.id, view: UserView.FULL });
  step("3. user with posts", { name: full.user?.name, posts: full.user?.posts.map((p) => p.title) });
  const aged = await users.updateUser({ user: { id: user.id, age: 37 }, updateMask: { paths: ["age"] } });
  step("4. updated age", { age: aged.user?.age });
  step("5. user count", { count: (await users.countUsers({})).count });
  await users.deleteUser({ id: user.id });
  step("6. deleted user", { id: user.id });
  step(`7. user ${user.id} is ${await gone(users.getUser({ id: user.id }))}`);
  step(`8. post ${post.id} is ${await gone(posts.getPost({ id: post.id }))}`);
} catch (error) {
  const e = error instanceof BlogClientError ? error : undefined;
  if (e?.code === status.UNAVAILABLE) console.error(`no blog-service at ${address}: start it with \`npm start\` first`);
  else console.error(`demo failed: ${e?.details ?? String(error)}`);
  process.exitCode = 1;
} finally {
  close();
}
