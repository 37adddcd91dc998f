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
 * PostMillis is what a statement reads of a post besides its texts, with its
 * times in epoch milliseconds (epochMillis).
 */
export type PostMillis = Omit<PostRow, "title" | "content" | "createTime" | "updateTime"> & {
  createTime: number;
  updateTime: number;
};

/**
 * postOfMillis is a PostMillis and its texts as a PostRow: the one mapping of
 * posts read with epochMillis. The texts come apart because an insert does
 * not read them back (it knows them), and because spreading pg's rows into
 * new objects costs about 2.5 µs a row.
 */
export function postOfMillis(post: PostMillis, texts: Pick<PostRow, "title" | "content">): PostRow {
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
