import { status } from "@grpc/grpc-js";
import { UserSchema, UserView } from "../../gen/blog/v1/user_pb.js";
import { CreateUserRequestSchema } from "../../gen/blog/v1/user_service_pb.js";
import type { UserService } from "../../gen/blog/v1/user_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { ServiceError, errorInfo, invalidArgument, notFound, required, staleEtag } from "../grpc/errors.js";
import { expectedVersion } from "../grpc/etag.js";
import { maskedPaths } from "../grpc/field-mask.js";
import { readsOwnWrites } from "../grpc/min-lsn.js";
import { requestHash } from "../grpc/request-hash.js";
import { trimWhiteSpace } from "../grpc/trim.js";
import type { PageTokens } from "../list/page-token.js";
import { pageSize, parseListQuery } from "../list/query.js";
import { exportBatches } from "../list/export.js";
import { userToProto } from "./mapper.js";
import type { User } from "./model.js";
import { usersListing } from "./listing.js";
import type { UserFields, UserRepository } from "./repository.js";

/** reusedRequestId answers a request_id sent again with a different request (AIP-155). */
export function reusedRequestId(): ServiceError {
  return invalidArgument("REQUEST_ID_REUSED", [
    { field: "request_id", description: "was already used for a different request; use a new UUID" },
  ]);
}

/** userService implements blog.v1.UserService over the user repository. */
export function userService(
  users: UserRepository,
  pageTokens: () => Promise<PageTokens>,
): ServiceImpl<typeof UserService> {
  return {
    async createUser(request) {
      const user = required(request.user, "user");
      const fields = { name: trimWhiteSpace(user.name), age: user.age };
      if (request.requestId === "") return { user: userToProto(await users.create(fields)) };
      const result = await users.createOnce(fields, {
        requestId: request.requestId,
        method: "CreateUser",
        requestHash: requestHash(CreateUserRequestSchema, request),
      });
      if (result.kind === "reused") throw reusedRequestId();
      if (result.value === undefined) {
        throw new ServiceError(status.NOT_FOUND, "the user this request_id created has since been deleted", [
          errorInfo("USER_NOT_FOUND", { requestId: request.requestId }),
        ]);
      }
      return { user: userToProto(result.value) };
    },

    async getUser({ id, view }, { metadata }) {
      const withPosts = view === UserView.FULL;
      const user = readsOwnWrites(metadata) ? await users.get(id, { withPosts }) : await users.find(id, { withPosts });
      if (user === undefined) throw notFound("user", id);
      return { user: userToProto(user) };
    },

    async updateUser(request) {
      const user = required(request.user, "user");
      const paths = maskedPaths(UserSchema, user, request.updateMask);
      const fields: Partial<UserFields> = {};
      if (paths.has("name")) fields.name = trimWhiteSpace(user.name);
      if (paths.has("age")) fields.age = user.age;
      const version = expectedVersion(user.etag);
      if (Object.keys(fields).length === 0) {
        const current = await users.get(user.id, { withPosts: false });
        if (current === undefined) throw notFound("user", user.id);
        if (version !== undefined && version !== current.version) throw staleEtag(status.ABORTED, "user", user.id);
        return { user: userToProto(current) };
      }
      const result = await users.change(user.id, fields, version);
      if (result.kind === "missing") throw notFound("user", user.id);
      if (result.kind === "stale") throw staleEtag(status.ABORTED, "user", user.id);
      return { user: userToProto(result.value) };
    },

    async deleteUser({ id, etag }) {
      const result = await users.delete(id, expectedVersion(etag));
      if (result.kind === "missing") throw notFound("user", id);
      if (result.kind === "stale") throw staleEtag(status.FAILED_PRECONDITION, "user", id);
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
        users.total(query, request.totalSizeMode),
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
      for await (const batch of exportBatches(users.stream(query), signal)) {
        yield { users: batch.map(userToProto) };
      }
    },
  };
}
