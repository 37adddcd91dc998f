import { Model } from "objection";
import type { RelationMappings } from "objection";
import { Post } from "../posts/model.js";

/** User is a row of `users`; `posts` is filled by withGraphFetched. */
export class User extends Model {
  static override tableName = "users";

  id!: bigint;
  name!: string;
  age!: number;
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
