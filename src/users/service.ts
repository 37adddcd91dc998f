import { status } from "@grpc/grpc-js";
import { UserSchema, UserView } from "../../gen/blog/v1/user_pb.js";
import { CreateUserRequestSchema } from "../../gen/blog/v1/user_service_pb.js";
import type { UserService } from "../../gen/blog/v1/user_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { ServiceError, errorInfo, notFound, required } from "../grpc/errors.js";
import { maskedFields } from "../grpc/field-mask.js";
import { createResource, deleteResource, updateResource } from "../grpc/resource-handlers.js";
import { messageBatches, utf8Bytes } from "../grpc/stream-budget.js";
import { totalCount } from "../grpc/total-count.js";
import { trimWhiteSpace } from "../grpc/trim.js";
import type { PageTokens } from "../list/page-token.js";
import { pageSize, parseListQuery } from "../list/query.js";
import type { Position } from "../list/query.js";
import { exportChunks } from "../list/export.js";
import { userToProto } from "./mapper.js";
import type { User } from "./model.js";
import { usersListing } from "./listing.js";
import type { UserFields, UserRepository } from "./repository.js";

/** userService implements blog.v1.UserService over the user repository. */
export function userService(
  users: UserRepository,
  pageTokens: () => Promise<PageTokens>,
): ServiceImpl<typeof UserService> {
  return {
    async createUser(request) {
      const user = required(request.user, "user");
      const fields = { name: trimWhiteSpace(user.name), age: user.age };
      const created = await createResource("user", CreateUserRequestSchema, request, {
        create: () => users.create(fields),
        createOnce: (key) => users.createOnce(fields, key),
      });
      return { user: userToProto(created) };
    },

    async getUser({ id, view }, { minLsn }) {
      const withPosts = view === UserView.FULL;
      // A read that must see a given write is not batched: a batch takes one route.
      const user =
        minLsn === undefined
          ? await users.find(id, { withPosts })
          : withPosts
            ? await users.getWithPosts(id)
            : await users.get(id);
      if (user === undefined) throw notFound("user", id);
      return { user: userToProto(user) };
    },

    async updateUser(request) {
      const user = required(request.user, "user");
      const fields = maskedFields<typeof UserSchema, UserFields>(UserSchema, user, request.updateMask, {
        name: (u) => trimWhiteSpace(u.name),
        age: (u) => u.age,
      });
      const updated = await updateResource("user", user.id, user.etag, fields, {
        get: (id) => users.get(id),
        update: (id, f, version) => users.change(id, f, version),
      });
      return { user: userToProto(updated) };
    },

    async deleteUser({ id, etag }) {
      await deleteResource("user", id, etag, (i, version) => users.delete(i, version));
      return {};
    },

    async countUsers() {
      return { count: await users.count() };
    },

    async listUsers(request) {
      const tokens = await pageTokens();
      const query = parseListQuery(usersListing, request, tokens);
      const withPosts = request.view === UserView.FULL;
      const [page, total] = await Promise.all([
        users.list(query, pageSize(request.pageSize), withPosts, tokens),
        users.total(query, totalCount(request.totalSizeMode)),
      ]);
      return { users: page.rows.map(userToProto), nextPageToken: page.nextPageToken, totalSize: total };
    },

    async batchGetUsers({ ids, view }) {
      const found = new Map<bigint, User>();
      for (const user of await users.getMany(ids, { withPosts: view === UserView.FULL })) found.set(user.id, user);
      const missing = [...new Set(ids.filter((id) => !found.has(id)))];
      if (missing.length > 0) {
        throw new ServiceError(status.NOT_FOUND, `users ${missing.join(", ")} not found`, [
          errorInfo("USERS_NOT_FOUND", { ids: missing.join(",") }),
        ]);
      }
      return { users: ids.map((id) => userToProto(found.get(id)!)) };
    },

    async *exportUsers(request, { signal }) {
      const query = parseListQuery(usersListing, request);
      const read = (after: Position | undefined, limit: number) => users.exportChunk(query, after, limit);
      for await (const rows of exportChunks(usersListing, query, read, signal)) {
        for (const batch of messageBatches(rows, (u) => utf8Bytes(u.name))) yield { users: batch.map(userToProto) };
      }
    },
  };
}
