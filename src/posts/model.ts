import { Model } from "objection";
import type { Modifiers, RelationMappings } from "objection";
import { User } from "../users/model.js";

/** Post is a row of `posts`, owned by one user. */
export class Post extends Model {
  static override tableName = "posts";

  id!: bigint;
  userId!: bigint;
  title!: string;
  content!: string;
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
