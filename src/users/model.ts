import { Model } from "objection";
import type { RelationMappings } from "objection";
import { Post, postBytes, postOfMillis } from "../posts/model.js";
import type { PostRow } from "../posts/model.js";
import { utf8Bytes } from "../list/row-bytes.js";

/** User is a row of `users`; `posts` is filled by withGraphFetched. */
export class User extends Model {
  static override tableName = "users";

  id!: bigint;
  name!: string;
  age!: number;
  /** version is bumped by every update; the etag is derived from it. */
  version!: bigint;
  createTime!: Date;
  updateTime!: Date;
  posts?: Post[];

  static override relationMappings = (): RelationMappings => ({
    posts: {
      relation: Model.HasManyRelation,
      modelClass: Post,
      join: { from: "users.id", to: "posts.userId" },
    },
  });
}

/** UserRow is a user as read: a model, or a plain row (an export chunk, a page). */
export type UserRow = Pick<User, "id" | "name" | "age" | "version" | "createTime" | "updateTime"> & {
  posts?: PostRow[] | undefined;
};

/** userBytes bounds from above what a user (with the posts fetched) takes in a reply. */
export function userBytes(user: UserRow): number {
  let bytes = utf8Bytes(user.name);
  for (const post of user.posts ?? []) bytes += postBytes(post);
  return bytes;
}

/**
 * PostJson is one of a user's posts as a FULL listing's statement reads them
 * into a JSON array: `json_build_array(id::text, title, content,
 * version::text, <create_time>, <update_time>)`, int8 as text (JSON numbers
 * hold 53 bits), times in epoch milliseconds (epochMillis).
 */
export type PostJson = [
  id: string,
  title: string,
  content: string,
  version: string,
  createTime: number,
  updateTime: number,
];

/** postOfJson is a PostJson of the user's as a PostRow. */
export function postOfJson(userId: bigint, [id, title, content, version, createTime, updateTime]: PostJson): PostRow {
  return postOfMillis({ id: BigInt(id), userId, version: BigInt(version), createTime, updateTime }, { title, content });
}
