import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import { PostService } from "../../gen/blog/v1/post_service_pb.js";
import { copyPostsIn } from "./copy.js";
import { clearFields, defineScenario, randomId } from "./scenario.js";

const batch = 1000;

function requests(userId: bigint) {
  return Array.from({ length: batch }, (_, i) => ({ post: { userId, title: `Batch post ${i}`, content: "x" } }));
}

/**
 * batchCreatePosts inserts 1,000 posts for a random seeded user in one call.
 * Its limit is COPY FROM, which returns no posts: only its row count is
 * compared with the service's answer.
 */
export const batchCreatePosts = defineScenario({
  id: "batch-create-posts",
  title: "BatchCreatePosts of 1,000",
  method: PostService.method.batchCreatePosts,
  limit: "pg",
  request: (data) => {
    const userId = randomId(data.users);
    return { userId, requests: requests(userId) };
  },
  sample: () => ({ userId: 1n, requests: requests(1n) }),
  direct: copyPostsIn,
  rowField: "posts",
  normalize: ({ posts }) => {
    for (const post of posts) clearFields(PostSchema, post, ["id", "create_time", "update_time", "etag"]);
  },
});
