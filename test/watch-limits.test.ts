// The change feed's budgets: a stalled watcher delays only itself (writers and
// other watchers go on, and the idle-write timeout ends it), and an idle watch
// gets heartbeats that carry a fresh resume token.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { credentials, status } from "@grpc/grpc-js";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import type { PostChange } from "../gen/blog/v1/post_service_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import type { UserChange } from "../gen/blog/v1/user_service_pb.js";
import { createClient } from "../src/client/transport.js";
import type { ClientError } from "../src/client/transport.js";
import { startCustomServer } from "./custom-server.js";
import type { CustomServer } from "./custom-server.js";
import { until } from "./poll.js";
import { Recorder } from "./watch-recorder.js";

let server: CustomServer;
const stop = new AbortController();
/** Each client on a connection of its own, so a stalled stream's flow control holds back only itself. */
const client = <S extends typeof UserService | typeof PostService>(service: S) =>
  createClient(service, `127.0.0.1:${server.port}`, credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
let posts: ReturnType<typeof client<typeof PostService>>;
let stalledPosts: ReturnType<typeof client<typeof PostService>>;
let users: ReturnType<typeof client<typeof UserService>>;
before(async () => {
  server = await startCustomServer({ streamIdleWriteMs: 300, watchHeartbeatMs: 100 });
  posts = client(PostService);
  stalledPosts = client(PostService);
  users = client(UserService);
});
after(async () => {
  stop.abort();
  for (const c of [posts, stalledPosts, users]) c.close();
  await server.close();
});

it("a stalled watcher delays only itself: writes and other watchers go on, and the idle-write timeout ends it", async () => {
  const { user } = await users.createUser({ user: { name: "Writer", age: 30 } });
  const active = new Recorder<PostChange>(posts.watchPosts({}, { signal: stop.signal }));
  await active.started();
  const stalled = stalledPosts.watchPosts({})[Symbol.asyncIterator]();
  await stalled.next(); // its first heartbeat; then it reads no more
  // About 8 MB of changes: far more than HTTP/2 flow control lets the stalled watch take unread.
  const content = "x".repeat(80_000);
  const ids: bigint[] = [];
  for (let n = 0; n < 100; n++) {
    ids.push((await posts.createPost({ post: { userId: user!.id, title: `p${n}`, content } })).post!.id);
  }
  await active.sees("the last post", (c) => c.post?.id === ids.at(-1));
  assert.deepEqual(
    active.changes.map((c) => c.post?.id),
    ids,
  );
  await until("the server ends the stalled watch", () =>
    server.logs.some((l) => l.method === "/blog.v1.PostService/WatchPosts" && l.grpcCode === "DEADLINE_EXCEEDED"),
  );
  let error: ClientError | undefined;
  try {
    for (let next = await stalled.next(); !next.done; next = await stalled.next());
  } catch (e) {
    error = e as ClientError;
  }
  assert.equal(error?.code, status.DEADLINE_EXCEEDED);
  assert.equal(
    error?.details,
    "the client read nothing for 300 ms, the server's stream idle-write timeout; resume with a new call",
  );
});

it("an idle watch gets heartbeats: no changes, the resume token of the end of the feed", async () => {
  const watch = new Recorder<UserChange>(users.watchUsers({}, { signal: stop.signal }));
  await until("three heartbeats came", () => watch.messages.length >= 3);
  assert.ok(watch.messages.every((m) => m.changes.length === 0 && m.resumeToken === watch.messages[0]!.resumeToken));
  const { user } = await users.createUser({ user: { name: "After the heartbeats", age: 1 } });
  await watch.sees("the create", (c) => c.user?.id === user!.id);
});
