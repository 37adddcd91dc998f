import { PostService } from "../../gen/blog/v1/post_service_pb.js";
import { copyPostsOut } from "./copy.js";
import { defineScenario } from "./scenario.js";
import type { DataSet } from "./scenario.js";

/** rows is what one measured call exports: a million posts, or every seeded post when there are fewer. */
const rows = (data: DataSet) => Math.min(1_000_000, data.users * data.postsPerUser);

/** sampleRows keeps the compared answer small enough to hold, decode and hand to the echo. */
const sampleRows = (data: DataSet) => Math.min(10_000, rows(data));

/**
 * exportPosts streams min(1,000,000, seeded) posts in messages of 500. Calls
 * last seconds, so it sweeps 1 and 2 calls in flight; its limit reads the same
 * rows with COPY TO, and the echo replays the sample's messages until it has
 * streamed as many rows as a call (rounded up to the sample's size).
 */
export const exportPosts = defineScenario({
  id: "export-posts",
  title: "ExportPosts of up to 1,000,000",
  method: PostService.method.exportPosts,
  limit: "pg",
  request: (data) => ({ filter: `id <= ${rows(data)}` }),
  sample: (data) => ({ filter: `id <= ${sampleRows(data)}` }),
  direct: copyPostsOut,
  rowField: "posts",
  concurrency: [1, 2],
  echoRepeat: (data) => Math.ceil(rows(data) / sampleRows(data)),
});
