import { Model } from "objection";
import type { Modifiers, RelationMappings } from "objection";
import { utf8Bytes } from "../list/row-bytes.js";
import { User } from "../users/model.js";

/** Post is a row of `posts`, owned by one user. */
export class Post extends Model {
  static override tableName = "posts";

  id!: bigint;
  userId!: bigint;
  title!: string;
  content!: string;
  /** version is bumped by every update; the etag is derived from it. */
  version!: bigint;
  createTime!: Date;
  updateTime!: Date;
  user?: User;

  static override relationMappings = (): RelationMappings => ({
    user: {
      relation: Model.BelongsToOneRelation,
      modelClass: User,
      join: { from: "posts.userId", to: "users.id" },
    },
  });

  static override modifiers: Modifiers = {
    /** oldestFirst orders posts by id, i.e. creation order. */
    oldestFirst: (query) => query.orderBy("id"),
  };
}

/** PostRow is a post as read: a model, or a plain row (an export chunk, a page). */
export type PostRow = Pick<Post, "id" | "userId" | "title" | "content" | "version" | "createTime" | "updateTime">;

/** PostMillis is a post as a statement reads it with its times in epoch milliseconds (epochMillis). */
export type PostMillis = Omit<PostRow, "createTime" | "updateTime"> & { createTime: number; updateTime: number };

/**
 * postOfMillis is a PostMillis as a PostRow: the one mapping of posts read
 * with epochMillis. `texts` gives the title and content when the statement
 * did not read them back (an insert knows them).
 */
export function postOfMillis(
  post: Omit<PostMillis, "title" | "content">,
  texts: Pick<PostRow, "title" | "content">,
): PostRow {
  return {
    id: post.id,
    userId: post.userId,
    title: texts.title,
    content: texts.content,
    version: post.version,
    createTime: new Date(post.createTime),
    updateTime: new Date(post.updateTime),
  };
}

/** postBytes bounds from above what a post takes in a reply. */
export function postBytes(post: Pick<PostRow, "title" | "content">): number {
  return utf8Bytes(post.title, post.content);
}
