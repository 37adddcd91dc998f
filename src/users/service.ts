import { UserSchema, UserView } from "../../gen/blog/v1/user_pb.js";
import type { UserService } from "../../gen/blog/v1/user_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { notFound, required } from "../grpc/errors.js";
import { maskedPaths } from "../grpc/field-mask.js";
import { userToProto } from "./mapper.js";
import type { UserFields, UserRepository } from "./repository.js";

/** userService implements blog.v1.UserService over the user repository. */
export function userService(users: UserRepository): ServiceImpl<typeof UserService> {
  return {
    async createUser(request) {
      const user = required(request.user, "user");
      const created = await users.create({ name: user.name.trim(), age: user.age });
      return { user: userToProto(created) };
    },

    async getUser({ id, view }) {
      const user = await users.get(id, { withPosts: view === UserView.FULL });
      if (user === undefined) throw notFound("user", id);
      return { user: userToProto(user) };
    },

    async updateUser(request) {
      const user = required(request.user, "user");
      const paths = maskedPaths(UserSchema, user, request.updateMask);
      const fields: Partial<UserFields> = {};
      if (paths.has("name")) fields.name = user.name.trim();
      if (paths.has("age")) fields.age = user.age;
      const updated =
        Object.keys(fields).length === 0
          ? await users.get(user.id, { withPosts: false })
          : await users.update(user.id, fields);
      if (updated === undefined) throw notFound("user", user.id);
      return { user: userToProto(updated) };
    },

    async deleteUser({ id }) {
      if (!(await users.delete(id))) throw notFound("user", id);
      return {};
    },

    async countUsers() {
      return { count: await users.count() };
    },
  };
}
