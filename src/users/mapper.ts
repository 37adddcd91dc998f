import { etagOf } from "../grpc/etag.js";
import { timestampOf } from "../grpc/timestamp.js";
import type { User as UserMessage } from "../../gen/blog/v1/user_pb.js";
import type { UserChange } from "../../gen/blog/v1/user_service_pb.js";
import type { ChangeRow } from "../db/change-feed.js";
import { changeType } from "../grpc/watch.js";
import { postToProto } from "../posts/mapper.js";
import type { UserRow } from "./model.js";

/** userToProto maps a row (with posts when they were fetched) to the API's User, as a literal like postToProto. */
export function userToProto(user: UserRow): UserMessage {
  return {
    $typeName: "blog.v1.User",
    id: user.id,
    name: user.name,
    age: user.age,
    posts: user.posts?.map(postToProto) ?? [],
    createTime: timestampOf(user.createTime),
    updateTime: timestampOf(user.updateTime),
    etag: etagOf(user.version),
  };
}

/** userChangeToProto maps a change of the feed to the API's UserChange: the user as written, or its id when deleted. */
export function userChangeToProto(change: ChangeRow): UserChange {
  const d = change.data;
  return {
    $typeName: "blog.v1.UserChange",
    type: changeType(change),
    user:
      d === null
        ? { $typeName: "blog.v1.User", id: change.resourceId, name: "", age: 0, posts: [], etag: "" }
        : userToProto({
            id: BigInt(d.id!),
            name: d.name!,
            age: Number(d.age),
            version: BigInt(d.version!),
            createTime: new Date(d.create_time!),
            updateTime: new Date(d.update_time!),
          }),
    commitTime: timestampOf(change.commitTime),
  };
}
