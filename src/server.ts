import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { ChannelOptions } from "@grpc/grpc-js";
import type { Knex } from "knex";
import type { Registry } from "prom-client";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { implement, serviceDefinition } from "./grpc/adapter.js";
import type { Middleware } from "./grpc/adapter.js";
import { HealthStatus, ServingStatus, healthService } from "./grpc/health.js";
import { addReflection } from "./grpc/reflection.js";
import { serverOptions } from "./grpc/server-options.js";
import { validation } from "./grpc/validation.js";
import { lazyPageTokens } from "./list/tokens.js";
import type { Logger } from "./log.js";
import { instrument } from "./observability/instrument.js";
import { PostRepository } from "./posts/repository.js";
import { postService } from "./posts/service.js";
import { UserRepository } from "./users/repository.js";
import { userService } from "./users/service.js";

/** ServerDeps is what the server needs from outside: tests pass their own. */
export interface ServerDeps {
  db: Knex;
  log: Logger;
  /** grpcOptions replaces serverOptions (main.ts passes them with the GRPC_* overrides). */
  grpcOptions?: ChannelOptions;
}

/** BlogServer is a configured server that has not started listening. */
export interface BlogServer {
  readonly health: HealthStatus;
  /** metrics is this server's Prometheus registry; main.ts serves it on METRICS_ADDRESS. */
  readonly metrics: Registry;
  /** listen binds address (port 0 picks a free one) and returns the bound port. */
  listen(address: string): Promise<number>;
  /** shutdown flips health to NOT_SERVING, lets calls finish for graceMs, then forces. */
  shutdown(graceMs: number): Promise<void>;
}

const apiServices = [UserService, PostService];

/**
 * createServer wires repositories, handlers, validation, health and
 * reflection into a grpc-js server; it never listens by itself.
 */
export function createServer({ db, log, grpcOptions = serverOptions }: ServerDeps): BlogServer {
  const server = new Server(grpcOptions);
  const health = new HealthStatus(
    apiServices.map((s) => s.typeName),
    ServingStatus.NOT_SERVING,
  );
  const logError = (error: unknown, message: string) => log.error({ err: error }, message);
  const observability = instrument({ db, log, services: apiServices });
  const middleware: Middleware[] = [observability.middleware, validation];
  const pageTokens = lazyPageTokens(db);
  server.addService(
    serviceDefinition(UserService),
    implement(UserService, userService(new UserRepository(db), pageTokens), { middleware, logError }),
  );
  server.addService(
    serviceDefinition(PostService),
    implement(PostService, postService(new PostRepository(db), pageTokens), { middleware, logError }),
  );
  server.addService(serviceDefinition(Health), implement(Health, healthService(health), { logError }));
  addReflection(server, [...apiServices, Health]);

  return {
    health,
    metrics: observability.registry,
    listen: (address) =>
      new Promise((resolve, reject) => {
        server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
          if (error) return reject(error);
          health.setAll(ServingStatus.SERVING);
          resolve(port);
        });
      }),
    shutdown: (graceMs) =>
      new Promise((resolve) => {
        health.setAll(ServingStatus.NOT_SERVING);
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          observability.close();
          resolve();
        });
      }),
  };
}
