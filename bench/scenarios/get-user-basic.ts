import { UserView } from "../../gen/blog/v1/user_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { defineScenario, randomId } from "./scenario.js";

/** getUserBasic reads one user without posts: one primary-key lookup. */
export const getUserBasic = defineScenario({
  id: "get-user-basic",
  title: "GetUser BASIC",
  method: UserService.method.getUser,
  limit: "pg",
  request: (data) => ({ id: randomId(data.users), view: UserView.BASIC }),
  sample: (data) => ({ id: BigInt(Math.ceil(data.users / 2)), view: UserView.BASIC }),
});
