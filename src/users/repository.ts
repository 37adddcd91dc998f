import type { Knex } from "knex";
import { User } from "./model.js";

/** The user fields a caller may write. */
export interface UserFields {
  name: string;
  age: number;
}

/**
 * UserRepository holds every query on users. Each method takes an optional
 * transaction so multi-step writes can share one.
 */
export class UserRepository {
  constructor(private readonly db: Knex) {}

  async create(fields: UserFields, trx?: Knex.Transaction): Promise<User> {
    return User.query(trx ?? this.db)
      .insert(fields)
      .returning("*");
  }

  /** get returns the user, with posts oldest first when withPosts (two statements). */
  async get(id: bigint, options: { withPosts: boolean }, trx?: Knex.Transaction): Promise<User | undefined> {
    const query = User.query(trx ?? this.db).findById(String(id));
    return options.withPosts ? query.withGraphFetched("posts(oldestFirst)") : query;
  }

  /** update changes the given fields and update_time in one statement; undefined if no such user. */
  async update(id: bigint, fields: Partial<UserFields>, trx?: Knex.Transaction): Promise<User | undefined> {
    const db = trx ?? this.db;
    const [user] = await User.query(db)
      .patch({ ...fields, updateTime: db.fn.now() as unknown as Date })
      .where("id", String(id))
      .returning("*");
    return user;
  }

  /** delete removes the user and, by ON DELETE CASCADE, their posts; false if no such user. */
  async delete(id: bigint, trx?: Knex.Transaction): Promise<boolean> {
    return (await User.query(trx ?? this.db).deleteById(String(id))) > 0;
  }

  /** count is the demo's raw SQL. */
  async count(trx?: Knex.Transaction): Promise<bigint> {
    const result = await (trx ?? this.db).raw<{ rows: { count: bigint }[] }>("SELECT COUNT(*) AS count FROM users");
    return result.rows[0]?.count ?? 0n;
  }
}
