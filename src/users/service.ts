import { status } from "@grpc/grpc-js";
import { UserSchema, UserView } from "../../gen/blog/v1/user_pb.js";
import { CreateUserRequestSchema } from "../../gen/blog/v1/user_service_pb.js";
import type { UserService } from "../../gen/blog/v1/user_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { ServiceError, errorInfo, notFound, required } from "../grpc/errors.js";
import { maskedFields } from "../grpc/field-mask.js";
import { createResource, deleteResource, updateResource } from "../grpc/resource-handlers.js";
import { listPageBytes, maxBytesPerMessage, messageBatches, replyWithin } from "../grpc/stream-budget.js";
import type { ServiceLimits } from "../grpc/stream-budget.js";
import { utf8Bytes } from "../list/row-bytes.js";
import { totalCount } from "../grpc/total-count.js";
import { trimWhiteSpace } from "../grpc/trim.js";
import type { PageTokens } from "../list/page-token.js";
import { pageSize, parseListQuery } from "../list/query.js";
import type { Position } from "../list/query.js";
import { exportChunks } from "../list/export.js";
import type { ChangeWatch } from "../grpc/watch.js";
import { userChangeToProto, userToProto } from "./mapper.js";
import { userBytes } from "./model.js";
import type { User } from "./model.js";
import { usersListing } from "./listing.js";
import type { UserFields, UserRepository } from "./repository.js";

/**
 * maxMissingIdsListed bounds the ids a BatchGetUsers NOT_FOUND names, in its
 * message and its ErrorInfo: a few hundred 19-digit ids would pass the 8 KiB
 * of metadata a C-core client (Python grpcio) reads, and it would get
 * RESOURCE_EXHAUSTED instead of the status.
 */
const maxMissingIdsListed = 20;

function usersNotFound(missing: bigint[]): ServiceError {
  const listed = missing.slice(0, maxMissingIdsListed);
  const more = missing.length - listed.length;
  return new ServiceError(
    status.NOT_FOUND,
    `users ${listed.join(", ")} not found${more > 0 ? ` (and ${more} more)` : ""}`,
    [errorInfo("USERS_NOT_FOUND", { ids: listed.join(","), ...(more > 0 ? { more: String(more) } : {}) })],
  );
}

/** userService implements blog.v1.UserService over the user repository. */
export function userService(
  users: UserRepository,
  pageTokens: () => Promise<PageTokens>,
  { maxReplyBytes, streamShare }: ServiceLimits,
  feed: ChangeWatch,
): ServiceImpl<typeof UserService> {
  const messageBytes = maxBytesPerMessage(maxReplyBytes);
  const pageBytes = listPageBytes(maxReplyBytes);
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
      replyWithin(userBytes(user), maxReplyBytes, "read the posts with ListPosts instead of view FULL");
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
      const [{ result: page, head }, total] = await Promise.all([
        users.list(query, pageSize(request.pageSize), withPosts, tokens, pageBytes),
        users.total(query, totalCount(request.totalSizeMode)),
      ]);
      // The repository ends the page before a user that does not fit, so only a first user too large alone is refused.
      const bytes = page.rows.reduce((sum, u) => sum + userBytes(u), 0);
      replyWithin(bytes, pageBytes, "this user's posts alone take more: read them with ListPosts, or use view BASIC");
      return {
        users: page.rows.map(userToProto),
        nextPageToken: page.nextPageToken,
        totalSize: total,
        watchToken: feed.listToken(head),
      };
    },

    async batchGetUsers({ ids, view }) {
      const found = new Map<bigint, User>();
      for (const user of await users.getMany(ids, { withPosts: view === UserView.FULL })) found.set(user.id, user);
      const missing = [...new Set(ids.filter((id) => !found.has(id)))];
      if (missing.length > 0) throw usersNotFound(missing);
      const bytes = ids.reduce((sum, id) => sum + userBytes(found.get(id)!), 0);
      replyWithin(bytes, maxReplyBytes, "ask for fewer or distinct ids, or view BASIC");
      return { users: ids.map((id) => userToProto(found.get(id)!)) };
    },

    async *exportUsers(request, { cancellation }) {
      const query = parseListQuery(usersListing, request);
      const read = (after: Position | undefined, limit: number) => users.exportChunk(query, after, limit);
      for await (const rows of exportChunks(usersListing, query, read, cancellation.signal, streamShare)) {
        for (const batch of messageBatches(rows, (u) => utf8Bytes(u.name), messageBytes))
          yield { users: batch.map(userToProto) };
      }
    },

    watchUsers({ resumeToken }, { cancellation }) {
      return feed.watch({ resource: "user" }, resumeToken, cancellation.signal, (changes, token) => ({
        changes: changes.map(userChangeToProto),
        resumeToken: token,
      }));
    },
  };
}
