import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, equals, toBinary } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PostSchema } from "../../gen/blog/v1/post_pb.js";
import { UserSchema } from "../../gen/blog/v1/user_pb.js";
import { postToProto } from "../posts/mapper.js";
import { userToProto } from "../users/mapper.js";
import { timestampOf } from "./timestamp.js";

const dates = [
  "2026-11-25T12:34:56.789Z",
  "1970-01-01T00:00:00.000Z",
  "1969-12-31T23:59:59.001Z",
  "0001-01-01T00:00:00Z",
];

describe("messages built as literals", () => {
  it("timestampOf equals timestampFromDate, before 1970 too", () => {
    for (const iso of dates) {
      const date = new Date(iso);
      assert.ok(equals(TimestampSchema, timestampOf(date), timestampFromDate(date)), iso);
      assert.deepEqual(
        toBinary(TimestampSchema, timestampOf(date)),
        toBinary(TimestampSchema, timestampFromDate(date)),
      );
    }
  });

  it("userToProto and postToProto equal what create() builds, byte for byte", () => {
    const [created, updated] = [new Date(dates[0]!), new Date(dates[2]!)];
    const post = {
      id: 7n,
      userId: 3n,
      title: "T",
      content: "C",
      version: 2n,
      createTime: created,
      updateTime: updated,
    };
    const user = { id: 3n, name: "Ada", age: 36, version: 5n, createTime: created, updateTime: updated, posts: [post] };
    const expectedPost = create(PostSchema, {
      id: 7n,
      userId: 3n,
      title: "T",
      content: "C",
      createTime: timestampFromDate(created),
      updateTime: timestampFromDate(updated),
      etag: "v2",
    });
    const expectedUser = create(UserSchema, {
      id: 3n,
      name: "Ada",
      age: 36,
      posts: [expectedPost],
      createTime: timestampFromDate(created),
      updateTime: timestampFromDate(updated),
      etag: "v5",
    });
    assert.ok(equals(PostSchema, postToProto(post), expectedPost));
    assert.ok(equals(UserSchema, userToProto(user), expectedUser));
    assert.deepEqual(toBinary(UserSchema, userToProto(user)), toBinary(UserSchema, expectedUser));
    assert.deepEqual(userToProto({ ...user, posts: undefined }).posts, []);
  });
});
