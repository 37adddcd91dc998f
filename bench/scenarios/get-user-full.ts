import { UserView } from "../../gen/blog/v1/user_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { defineScenario, randomId } from "./scenario.js";

/** getUserFull reads one user with all of their posts (the seeded posts per user). */
export const getUserFull = defineScenario({
  id: "get-user-full",
  title: "GetUser FULL",
  method: UserService.method.getUser,
  limit: "pg",
  request: (data) => ({ id: randomId(data.users), view: UserView.FULL }),
  sample: (data) => ({ id: BigInt(Math.ceil(data.users / 3)), view: UserView.FULL }),
});
