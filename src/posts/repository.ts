import type { Knex } from "knex";
import { Post } from "./model.js";

/** The post fields a caller may write. */
export interface PostFields {
  title: string;
  content: string;
}

/** PostRepository holds every query on posts; each method takes an optional transaction. */
export class PostRepository {
  constructor(private readonly db: Knex) {}

  /** create inserts a post; a missing user surfaces as a foreign key violation. */
  async create(userId: bigint, fields: PostFields, trx?: Knex.Transaction): Promise<Post> {
    return Post.query(trx ?? this.db)
      .insert({ userId, ...fields })
      .returning("*");
  }

  async get(id: bigint, trx?: Knex.Transaction): Promise<Post | undefined> {
    return Post.query(trx ?? this.db).findById(String(id));
  }

  /** update changes the given fields and update_time in one statement; undefined if no such post. */
  async update(id: bigint, fields: Partial<PostFields>, trx?: Knex.Transaction): Promise<Post | undefined> {
    const db = trx ?? this.db;
    const [post] = await Post.query(db)
      .patch({ ...fields, updateTime: db.fn.now() as unknown as Date })
      .where("id", String(id))
      .returning("*");
    return post;
  }

  async delete(id: bigint, trx?: Knex.Transaction): Promise<boolean> {
    return (await Post.query(trx ?? this.db).deleteById(String(id))) > 0;
  }
}
