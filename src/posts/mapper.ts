import { etagOf } from "../grpc/etag.js";
import { timestampOf } from "../grpc/timestamp.js";
import type { Post as PostMessage } from "../../gen/blog/v1/post_pb.js";
import type { PostRow } from "./model.js";

/**
 * postToProto maps a row to the API's Post. The message is built as a literal
 * (a protobuf-es message is a plain object with its $typeName; the generated
 * type makes tsc check every field), not with `create()`: see timestampOf.
 */
export function postToProto(post: PostRow): PostMessage {
  return {
    $typeName: "blog.v1.Post",
    id: post.id,
    userId: post.userId,
    title: post.title,
    content: post.content,
    createTime: timestampOf(post.createTime),
    updateTime: timestampOf(post.updateTime),
    etag: etagOf(post.version),
  };
}
