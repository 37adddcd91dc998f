import { Channel, Metadata, credentials } from "@grpc/grpc-js";
import { PostService } from "../../gen/blog/v1/post_service_pb.js";
import { UserService } from "../../gen/blog/v1/user_service_pb.js";
import { createClient } from "./transport.js";
import type { PromiseClient } from "./transport.js";
import { withDefaults } from "./call.js";
import { channelOptions } from "./options.js";
import { readYourWrites } from "./read-your-writes.js";
import { resumingWatch } from "./watch.js";
import type { BlogClientOptions } from "./options.js";

export * from "../../gen/blog/v1/change_pb.js";
export * from "../../gen/blog/v1/list_pb.js";
export * from "../../gen/blog/v1/post_pb.js";
export * from "../../gen/blog/v1/post_service_pb.js";
export * from "../../gen/blog/v1/user_pb.js";
export * from "../../gen/blog/v1/user_service_pb.js";
export type { ClientCallOptions } from "./transport.js";
export { BlogClientError, decodeErrorDetails } from "./errors.js";
export type { ErrorDetail } from "./errors.js";
export type { BlogClientOptions, RetryOptions } from "./options.js";
export { resumable } from "./watch.js";
// The grpc-js values a caller needs, from the copy this client uses, so that
// credentials and metadata pass its instanceof checks.
export { Metadata, credentials, status } from "@grpc/grpc-js";
export type { ChannelCredentials } from "@grpc/grpc-js";

/** BlogClient is the typed client of blog-service: one channel shared by both services. */
export interface BlogClient {
  readonly users: PromiseClient<typeof UserService>;
  readonly posts: PromiseClient<typeof PostService>;
  /** close closes the one channel of both services; the client cannot be used afterwards. */
  close(): void;
}

const services = [UserService, PostService] as const;

/**
 * createBlogClient connects to blog-service at address (`host:port`,
 * `dns:///host:port` to balance over every address of a name, or a static
 * `ipv4:a:p,b:p` list). The channel connects lazily, so creating a client
 * never fails for an unreachable server; calls do.
 */
export function createBlogClient(address: string, options: BlogClientOptions = {}): BlogClient {
  const creds = options.credentials ?? credentials.createInsecure();
  const channel = new Channel(address, creds, channelOptions(services, options));
  // One interceptor for both services: a post created is read back by users.getUser too.
  const interceptors = options.readYourWrites === false ? [] : [readYourWrites()];
  const shared = { channelOverride: channel, interceptors };
  const metadata = options.metadata?.clone() ?? new Metadata();
  if (options.token !== undefined) metadata.set("authorization", `Bearer ${options.token}`);
  const defaults = { deadlineMs: options.defaultDeadlineMs ?? 10_000, metadata, retry: options.retry ?? {} };
  const users = withDefaults(UserService, createClient(UserService, address, creds, shared), defaults);
  const posts = withDefaults(PostService, createClient(PostService, address, creds, shared), defaults);
  // Watches resume by themselves from their last resume_token (client/watch.ts).
  return {
    users: { ...users, watchUsers: (request, callOptions) => resumingWatch(users.watchUsers, request, callOptions) },
    posts: { ...posts, watchPosts: (request, callOptions) => resumingWatch(posts.watchPosts, request, callOptions) },
    close: () => channel.close(),
  };
}
