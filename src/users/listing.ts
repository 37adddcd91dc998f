import { int32Range, int64Range } from "../list/filter.js";
import type { ResourceListing } from "../list/query.js";
import { postsListing } from "../posts/listing.js";

/** usersListing is what ListUsers and ExportUsers may filter and order on. */
export const usersListing: ResourceListing = {
  resource: "users",
  fields: {
    id: { column: "users.id", property: "id", type: "integer", ...int64Range },
    name: { column: "users.name", property: "name", type: "text" },
    age: { column: "users.age", property: "age", type: "integer", ...int32Range },
    create_time: { column: "users.create_time", property: "createTime", type: "timestamp" },
    update_time: { column: "users.update_time", property: "updateTime", type: "timestamp" },
  },
  orderable: ["id", "name", "age", "create_time", "update_time"],
};

/** postTexts are the text columns of the posts a FULL listing carries, which its byte budget counts. */
export const postTexts: readonly string[] = postsListing.texts ?? [];
