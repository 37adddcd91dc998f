import { UserView } from "../../gen/blog/v1/user_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { defineScenario, randomId } from "./scenario.js";

const pageSize = 100;

/** listUsersFull reads a page of 100 users with their posts, from a random starting id. */
export const listUsersFull = defineScenario({
  id: "list-users-full",
  title: "ListUsers FULL, pages of 100",
  method: UserService.method.listUsers,
  limit: "pg",
  request: (data) => ({
    filter: `id > ${randomId(Math.max(1, data.users - pageSize))}`,
    pageSize,
    view: UserView.FULL,
  }),
  sample: (data) => ({ filter: `id > ${Math.floor(data.users / 2)}`, pageSize, view: UserView.FULL }),
  // The service's page token is sealed with its own key; the peer's cannot equal it. The peer has
  // no change feed, so no watch token either.
  normalize: (response) => {
    response.nextPageToken = "";
    response.watchToken = "";
  },
});
