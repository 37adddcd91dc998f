import { UserSchema } from "../../gen/blog/v1/user_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { clearFields, defineScenario, randomId } from "./scenario.js";

/** updateUser changes the age of a random seeded user through an update_mask. */
export const updateUser = defineScenario({
  id: "update-user",
  title: "UpdateUser",
  method: UserService.method.updateUser,
  limit: "pg",
  request: (data) => ({
    user: { id: randomId(data.users), age: Math.floor(Math.random() * 151) },
    updateMask: { paths: ["age"] },
  }),
  sample: (data) => ({ user: { id: BigInt(data.users), age: 42 }, updateMask: { paths: ["age"] } }),
  normalize: ({ user }) => user && clearFields(UserSchema, user, ["update_time", "etag"]),
});
