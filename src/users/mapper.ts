import { create } from "@bufbuild/protobuf";
import { etagOf } from "../grpc/etag.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserSchema } from "../../gen/blog/v1/user_pb.js";
import type { User as UserMessage } from "../../gen/blog/v1/user_pb.js";
import { postToProto } from "../posts/mapper.js";
import type { UserRow } from "./model.js";

/** userToProto maps a row (with posts when they were fetched) to the API's User. */
export function userToProto(user: UserRow): UserMessage {
  return create(UserSchema, {
    id: user.id,
    name: user.name,
    age: user.age,
    posts: user.posts?.map(postToProto) ?? [],
    createTime: timestampFromDate(user.createTime),
    updateTime: timestampFromDate(user.updateTime),
    etag: etagOf(user.version),
  });
}
