import { ForeignKeyViolationError } from "objection";
import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import type { PostService } from "../../gen/blog/v1/post_service_pb.js";
import type { ServiceImpl } from "../grpc/adapter.js";
import { notFound, required } from "../grpc/errors.js";
import { maskedPaths } from "../grpc/field-mask.js";
import { postToProto } from "./mapper.js";
import type { PostFields, PostRepository } from "./repository.js";

/** postService implements blog.v1.PostService over the post repository. */
export function postService(posts: PostRepository): ServiceImpl<typeof PostService> {
  return {
    async createPost(request) {
      const post = required(request.post, "post");
      try {
        const created = await posts.create(post.userId, { title: post.title.trim(), content: post.content });
        return { post: postToProto(created) };
      } catch (error) {
        // The foreign key, not a prior SELECT, decides: no race with a concurrent DeleteUser.
        if (error instanceof ForeignKeyViolationError) throw notFound("user", post.userId);
        throw error;
      }
    },

    async getPost({ id }) {
      const post = await posts.get(id);
      if (post === undefined) throw notFound("post", id);
      return { post: postToProto(post) };
    },

    async updatePost(request) {
      const post = required(request.post, "post");
      const paths = maskedPaths(PostSchema, post, request.updateMask);
      const fields: Partial<PostFields> = {};
      if (paths.has("title")) fields.title = post.title.trim();
      if (paths.has("content")) fields.content = post.content;
      const updated = Object.keys(fields).length === 0 ? await posts.get(post.id) : await posts.update(post.id, fields);
      if (updated === undefined) throw notFound("post", post.id);
      return { post: postToProto(updated) };
    },

    async deletePost({ id }) {
      if (!(await posts.delete(id))) throw notFound("post", id);
      return {};
    },
  };
}
