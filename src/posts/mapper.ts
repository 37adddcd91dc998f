import { create } from "@bufbuild/protobuf";
import { etagOf } from "../grpc/etag.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import type { Post as PostMessage } from "../../gen/blog/v1/post_pb.js";
import type { PostRow } from "./model.js";

/** postToProto maps a row to the API's Post. */
export function postToProto(post: PostRow): PostMessage {
  return create(PostSchema, {
    id: post.id,
    userId: post.userId,
    title: post.title,
    content: post.content,
    createTime: timestampFromDate(post.createTime),
    updateTime: timestampFromDate(post.updateTime),
    etag: etagOf(post.version),
  });
}
