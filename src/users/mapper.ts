import { etagOf } from "../grpc/etag.js";
import { timestampOf } from "../grpc/timestamp.js";
import type { User as UserMessage } from "../../gen/blog/v1/user_pb.js";
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
