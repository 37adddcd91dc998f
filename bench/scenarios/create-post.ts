import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import { PostService } from "../../gen/blog/v1/post_service_pb.js";
import { clearFields, defineScenario, randomId } from "./scenario.js";

const content = "A post written by the benchmark: ".padEnd(200, "lorem ipsum dolor sit amet ");

/** createPost inserts a post for a random seeded user. */
export const createPost = defineScenario({
  id: "create-post",
  title: "CreatePost",
  method: PostService.method.createPost,
  limit: "pg",
  request: (data) => ({ post: { userId: randomId(data.users), title: "Benchmark post", content } }),
  sample: () => ({ post: { userId: 1n, title: "Benchmark post", content } }),
  normalize: ({ post }) => post && clearFields(PostSchema, post, ["id", "create_time", "update_time", "etag"]),
});
