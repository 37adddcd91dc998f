import { status } from "@grpc/grpc-js";
import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import { CreatePostRequestSchema } from "../../gen/blog/v1/post_service_pb.js";
import type { PostService } from "../../gen/blog/v1/post_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { ServiceError, errorInfo, notFound, required, sqlState, staleEtag } from "../grpc/errors.js";
import { expectedVersion } from "../grpc/etag.js";
import { maskedPaths } from "../grpc/field-mask.js";
import { readsOwnWrites } from "../grpc/min-lsn.js";
import { requestHash } from "../grpc/request-hash.js";
import { trimWhiteSpace } from "../grpc/trim.js";
import { exportBatches } from "../list/export.js";
import type { PageTokens } from "../list/page-token.js";
import { pageSize, parseListQuery } from "../list/query.js";
import { reusedRequestId } from "../users/service.js";
import { postsListing } from "./listing.js";
import { postToProto } from "./mapper.js";
import type { PostFields, PostRepository } from "./repository.js";

const foreignKeyViolation = "23503";

/** The foreign key, not a prior SELECT, decides: no race with a concurrent DeleteUser. */
async function forExistingUser<T>(userId: bigint, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (sqlState(error) === foreignKeyViolation) throw notFound("user", userId);
    throw error;
  }
}

function fieldsOf(post: { title: string; content: string }): PostFields {
  return { title: trimWhiteSpace(post.title), content: post.content };
}

/** postService implements blog.v1.PostService over the post repository. */
export function postService(
  posts: PostRepository,
  pageTokens: () => Promise<PageTokens>,
): ServiceImpl<typeof PostService> {
  return {
    async createPost(request) {
      const post = required(request.post, "post");
      if (request.requestId === "") {
        return {
          post: postToProto(await forExistingUser(post.userId, () => posts.add(post.userId, fieldsOf(post)))),
        };
      }
      const result = await forExistingUser(post.userId, () =>
        posts.createOnce(post.userId, fieldsOf(post), {
          requestId: request.requestId,
          method: "CreatePost",
          requestHash: requestHash(CreatePostRequestSchema, request),
        }),
      );
      if (result.kind === "reused") throw reusedRequestId();
      if (result.value === undefined) {
        throw new ServiceError(status.NOT_FOUND, "the post this request_id created has since been deleted", [
          errorInfo("POST_NOT_FOUND", { requestId: request.requestId }),
        ]);
      }
      return { post: postToProto(result.value) };
    },

    async getPost({ id }, { metadata }) {
      const post = readsOwnWrites(metadata) ? await posts.get(id) : await posts.find(id);
      if (post === undefined) throw notFound("post", id);
      return { post: postToProto(post) };
    },

    async updatePost(request) {
      const post = required(request.post, "post");
      const paths = maskedPaths(PostSchema, post, request.updateMask);
      const fields: Partial<PostFields> = {};
      if (paths.has("title")) fields.title = trimWhiteSpace(post.title);
      if (paths.has("content")) fields.content = post.content;
      const version = expectedVersion(post.etag);
      if (Object.keys(fields).length === 0) {
        const current = await posts.get(post.id);
        if (current === undefined) throw notFound("post", post.id);
        if (version !== undefined && version !== current.version) throw staleEtag(status.ABORTED, "post", post.id);
        return { post: postToProto(current) };
      }
      const result = await posts.update(post.id, fields, version);
      if (result.kind === "missing") throw notFound("post", post.id);
      if (result.kind === "stale") throw staleEtag(status.ABORTED, "post", post.id);
      return { post: postToProto(result.value) };
    },

    async deletePost({ id, etag }) {
      const result = await posts.delete(id, expectedVersion(etag));
      if (result.kind === "missing") throw notFound("post", id);
      if (result.kind === "stale") throw staleEtag(status.FAILED_PRECONDITION, "post", id);
      return {};
    },

    async listPosts(request) {
      const tokens = await pageTokens();
      const query = parseListQuery(postsListing, { ...request, parent: String(request.userId) }, tokens);
      const [page, total] = await Promise.all([
        posts.list(request.userId, query, pageSize(request.pageSize), tokens),
        posts.total(request.userId, query, request.totalSizeMode),
      ]);
      return { posts: page.rows.map(postToProto), nextPageToken: page.nextPageToken, totalSize: total };
    },

    async batchCreatePosts({ userId, requests }) {
      const fields = requests.map((r) => fieldsOf(required(r.post, "requests[].post")));
      const created = await forExistingUser(userId, () => posts.createMany(userId, fields));
      return { posts: created.map(postToProto) };
    },

    async *exportPosts(request, { signal }) {
      const query = parseListQuery(postsListing, { ...request, parent: String(request.userId) });
      for await (const batch of exportBatches(posts.stream(request.userId, query), signal)) {
        yield { posts: batch.map(postToProto) };
      }
    },
  };
}
