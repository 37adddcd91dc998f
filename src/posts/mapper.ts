import { etagOf } from "../grpc/etag.js";
import { timestampOf } from "../grpc/timestamp.js";
import type { Post as PostMessage } from "../../gen/blog/v1/post_pb.js";
import type { PostChange } from "../../gen/blog/v1/post_service_pb.js";
import type { ChangeRow } from "../db/change-feed.js";
import { changeType } from "../grpc/watch.js";
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

/** postChangeToProto maps a change of the feed to the API's PostChange: the post as written, or its ids when deleted. */
export function postChangeToProto(change: ChangeRow): PostChange {
  const d = change.data;
  return {
    $typeName: "blog.v1.PostChange",
    type: changeType(change),
    post:
      d === null
        ? { $typeName: "blog.v1.Post", id: change.resourceId, userId: change.userId, title: "", content: "", etag: "" }
        : postToProto({
            id: BigInt(d.id!),
            userId: BigInt(d.user_id!),
            title: d.title!,
            content: d.content!,
            version: BigInt(d.version!),
            createTime: new Date(d.create_time!),
            updateTime: new Date(d.update_time!),
          }),
    commitTime: timestampOf(change.commitTime),
  };
}
