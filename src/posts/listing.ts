import { int64Range as int64 } from "../list/filter.js";
import type { ResourceListing } from "../list/query.js";

/** postsListing is what ListPosts and ExportPosts may filter and order on. */
export const postsListing: ResourceListing = {
  resource: "posts",
  fields: {
    id: { column: "posts.id", property: "id", type: "integer", ...int64 },
    user_id: { column: "posts.user_id", property: "userId", type: "integer", ...int64 },
    title: { column: "posts.title", property: "title", type: "text" },
    content: { column: "posts.content", property: "content", type: "text" },
    create_time: { column: "posts.create_time", property: "createTime", type: "timestamp" },
    update_time: { column: "posts.update_time", property: "updateTime", type: "timestamp" },
  },
  orderable: ["id", "user_id", "title", "create_time", "update_time"],
  // Up to 300 + 100,000 characters: a page of 1000 posts could take 400 MB.
  texts: ["posts.title", "posts.content"],
};
