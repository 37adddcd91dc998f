import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import { BatchCreatePostsRequestSchema, CreatePostRequestSchema } from "../../gen/blog/v1/post_service_pb.js";
import type { PostService } from "../../gen/blog/v1/post_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { notFound, required } from "../grpc/errors.js";
import { maskedFields } from "../grpc/field-mask.js";
import { createResource, deleteResource, updateResource } from "../grpc/resource-handlers.js";
import { listPageBytes, maxBytesPerMessage, messageBatches, replyWithin } from "../grpc/stream-budget.js";
import type { ServiceLimits } from "../grpc/stream-budget.js";
import { postBytes } from "./model.js";
import { totalCount } from "../grpc/total-count.js";
import { trimWhiteSpace } from "../grpc/trim.js";
import { exportChunks } from "../list/export.js";
import type { PageTokens } from "../list/page-token.js";
import { pageSize, parseListQuery } from "../list/query.js";
import type { Position } from "../list/query.js";
import { postsListing } from "./listing.js";
import type { ChangeWatch } from "../grpc/watch.js";
import { postChangeToProto, postToProto } from "./mapper.js";
import type { PostFields, PostRepository } from "./repository.js";

function fieldsOf(post: { title: string; content: string }): PostFields {
  return { title: trimWhiteSpace(post.title), content: post.content };
}

/** postService implements blog.v1.PostService over the post repository. */
export function postService(
  posts: PostRepository,
  pageTokens: () => Promise<PageTokens>,
  { maxReplyBytes, streamShare }: ServiceLimits,
  feed: ChangeWatch,
): ServiceImpl<typeof PostService> {
  const messageBytes = maxBytesPerMessage(maxReplyBytes);
  const pageBytes = listPageBytes(maxReplyBytes);
  return {
    async createPost(request) {
      const post = required(request.post, "post");
      const created = await createResource("post", CreatePostRequestSchema, request, {
        create: () => posts.add(post.userId, fieldsOf(post)),
        createOnce: (key) => posts.createOnce(post.userId, fieldsOf(post), key),
      });
      return { post: postToProto(created) };
    },

    async getPost({ id }, { minLsn }) {
      // A read that must see a given write is not batched: a batch takes one route.
      const post = minLsn === undefined ? await posts.find(id) : await posts.get(id);
      if (post === undefined) throw notFound("post", id);
      return { post: postToProto(post) };
    },

    async updatePost(request) {
      const post = required(request.post, "post");
      const fields = maskedFields<typeof PostSchema, PostFields>(PostSchema, post, request.updateMask, {
        title: (p) => trimWhiteSpace(p.title),
        content: (p) => p.content,
      });
      const updated = await updateResource("post", post.id, post.etag, fields, posts);
      return { post: postToProto(updated) };
    },

    async deletePost({ id, etag }) {
      await deleteResource("post", id, etag, (i, version) => posts.delete(i, version));
      return {};
    },

    async listPosts(request) {
      const tokens = await pageTokens();
      const query = parseListQuery(postsListing, { ...request, parent: String(request.userId) }, tokens);
      const [{ result: page, head }, total] = await Promise.all([
        posts.list(request.userId, query, pageSize(request.pageSize), tokens, pageBytes),
        posts.total(request.userId, query, totalCount(request.totalSizeMode)),
      ]);
      const bytes = page.rows.reduce((sum, p) => sum + postBytes(p), 0);
      replyWithin(bytes, pageBytes, "this post alone is larger than the server sends in one message");
      return {
        posts: page.rows.map(postToProto),
        nextPageToken: page.nextPageToken,
        totalSize: total,
        watchToken: feed.listToken(head),
      };
    },

    async batchCreatePosts(request) {
      const { userId, requests } = request;
      const fields = requests.map((r) => fieldsOf(required(r.post, "requests[].post")));
      // Sized before the INSERT: a reply that cannot be sent must not leave committed rows behind.
      const bytes = fields.reduce((sum, p) => sum + postBytes(p), 0);
      replyWithin(bytes, maxReplyBytes, "send the posts in smaller batches");
      const created = await createResource(
        "post",
        BatchCreatePostsRequestSchema,
        request,
        {
          create: () => posts.createMany(userId, fields),
          createOnce: (key) => posts.createManyOnce(userId, fields, key),
        },
        "BatchCreatePosts",
      );
      return { posts: created.map(postToProto) };
    },

    async *exportPosts(request, { cancellation }) {
      const query = parseListQuery(postsListing, { ...request, parent: String(request.userId) });
      const read = (after: Position | undefined, limit: number) =>
        posts.exportChunk(request.userId, query, after, limit, messageBytes);
      for await (const rows of exportChunks(postsListing, query, read, cancellation.signal, streamShare)) {
        for (const batch of messageBatches(rows, postBytes, messageBytes)) {
          yield { posts: batch.map(postToProto) };
        }
      }
    },

    watchPosts({ resumeToken, userId }, { cancellation }) {
      const filter = { resource: "post" as const, ...(userId === 0n ? {} : { userId }) };
      return feed.watch(filter, resumeToken, cancellation.signal, (changes, token) => ({
        changes: changes.map(postChangeToProto),
        resumeToken: token,
      }));
    },
  };
}
