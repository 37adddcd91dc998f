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

/**
 * PostJson is a post as a statement reads it into a JSON array:
 * `json_build_array(id::text, title, content, version::text, <create_time>, <update_time>)`,
 * int8 as text (JSON numbers hold 53 bits), times in epoch milliseconds
 * (epochMillis: ISO 8601 text took about 1.7 times as long to build in
 * PostgreSQL, json_agg over 10,000 posts, and 0.4 µs a value to parse).
 */
export type PostJson = [
  id: string,
  title: string,
  content: string,
  version: string,
  createTime: number,
  updateTime: number,
];

/** postOfJson is a PostJson of a user's as a PostRow. */
export function postOfJson(userId: bigint, [id, title, content, version, createTime, updateTime]: PostJson): PostRow {
  return {
    id: BigInt(id),
    userId,
    title,
    content,
    version: BigInt(version),
    createTime: new Date(createTime),
    updateTime: new Date(updateTime),
  };
}

/** postBytes bounds from above what a post takes in a reply. */
export function postBytes(post: Pick<PostRow, "title" | "content">): number {
  return utf8Bytes(post.title, post.content);
}
