import { batchCreatePosts } from "./batch-create-posts.js";
import { createPost } from "./create-post.js";
import { getUserBasic } from "./get-user-basic.js";
import { exportPosts } from "./export-posts.js";
import { getUserFull } from "./get-user-full.js";
import { listUsersFull } from "./list-users-full.js";
import type { Scenario } from "./scenario.js";
import { updateUser } from "./update-user.js";

/**
 * scenarios run in this order: reads first, so GetUser FULL still finds the
 * seeded number of posts before the writes add more.
 */
export const scenarios: Scenario[] = [
  getUserBasic,
  getUserFull,
  listUsersFull,
  exportPosts,
  updateUser,
  createPost,
  batchCreatePosts,
];
