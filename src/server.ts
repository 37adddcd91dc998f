import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { ChannelOptions } from "@grpc/grpc-js";
import type { Knex } from "knex";
import type { Registry } from "prom-client";
import { PostService } from "../gen/blog/v1/post_service_pb.js";
import { UserView } from "../gen/blog/v1/user_pb.js";
import { UserService } from "../gen/blog/v1/user_service_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { implement, serviceDefinition } from "./grpc/adapter.js";
import { authenticate } from "./grpc/auth.js";
import type { AuthTokens } from "./grpc/auth-tokens.js";
import type { Middleware } from "./grpc/adapter.js";
import { HealthStatus, ServingStatus, healthService } from "./grpc/health.js";
import { readYourWrites } from "./grpc/read-your-writes.js";
import { addReflection } from "./grpc/reflection.js";
import { serverOptions } from "./grpc/server-options.js";
import { streamCaps } from "./grpc/stream-caps.js";
import { ByteRate } from "./grpc/byte-rate.js";
import { takingTurns } from "./grpc/turns.js";
import type { StreamCaps } from "./grpc/stream-caps.js";
import { validation } from "./grpc/validation.js";
import { ChangeWatch } from "./grpc/watch.js";
import { pruneChanges } from "./db/change-retention.js";
import { pruneRequestIds } from "./db/idempotency.js";
import { monitorDatabase } from "./db/monitor.js";
import { PoolShare } from "./db/pool-share.js";
import { primaryReader, replicaReader } from "./db/read-routing.js";
import type { ReplicaSet } from "./db/replicas.js";
import { lazyPageTokens } from "./list/tokens.js";
import { largeReadDefaults } from "./config.js";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import { instrument } from "./observability/instrument.js";
import { PostRepository } from "./posts/repository.js";
import { postService } from "./posts/service.js";
import { UserRepository } from "./users/repository.js";
import { userService } from "./users/service.js";

/** ServerDeps is what the server needs from outside: tests pass their own. */
export interface ServerDeps {
  db: Knex;
  /** replicas serve the reads that tolerate lag (DATABASE_REPLICA_URLS); undefined reads everything from db. */
  replicas?: ReplicaSet;
  log: Logger;
  /** grpcOptions replaces serverOptions (main.ts passes them with the GRPC_* overrides). */
  grpcOptions?: ChannelOptions;
  /** dbHealthIntervalMs is how often health probes the database (DB_HEALTH_INTERVAL_MS; default 1000). */
  dbHealthIntervalMs?: number;
  /** credentials are what listen binds with (TLS, mutual TLS; see grpc/credentials.ts); default plaintext. */
  credentials?: ServerCredentials;
  /** authTokens turns on bearer-token authentication (AUTH_TOKENS_FILE); undefined lets every caller in. */
  authTokens?: AuthTokens;
  /** streamMaxLifetimeMs ends server streams still running after it (STREAM_MAX_LIFETIME_MS; default 10 minutes). */
  streamMaxLifetimeMs?: number;
  /** poolStarvedMs is how long callers may wait on a full pool before health says NOT_SERVING (DATABASE_POOL_STARVED_MS; default 10 s). */
  poolStarvedMs?: number;
  /** streamIdleWriteMs ends server streams whose client takes no message for that long (STREAM_IDLE_WRITE_TIMEOUT_MS; default 30 s). */
  streamIdleWriteMs?: number;
  /** streamCaps bound the server streams open per connection and per process (STREAM_MAX_PER_CONNECTION, 16; STREAM_MAX_PER_PROCESS, 256). */
  streamCaps?: StreamCaps;
  /** streamPoolShare is how many pooled connections stream statements may hold at once (STREAM_POOL_SHARE; default half the pool). */
  streamPoolShare?: number;
  /** largeReadsMax is how many BatchGetUsers and ListUsers with view FULL run at once (LARGE_READS_MAX; default 2). */
  largeReadsMax?: number;
  /** largeReadBytesPerSecond is the reply bytes per second those reads may build together (LARGE_READ_BYTES_PER_SECOND; default 4 MiB). */
  largeReadBytesPerSecond?: number;
  /** largeReadFreeBytes is how much of each of those replies the byte rate does not count (LARGE_READ_FREE_BYTES; default 256 KiB). */
  largeReadFreeBytes?: number;
  /** watchHeartbeatMs: a watch that sent nothing for this long sends a heartbeat (WATCH_HEARTBEAT_INTERVAL_MS; default 10 s). */
  watchHeartbeatMs?: number;
  /** watchPollMs: watchers read the feed at least this often, notified or not (WATCH_POLL_INTERVAL_MS; default 1 s). */
  watchPollMs?: number;
  /** changeRetentionMs: the change feed keeps commits this long (CHANGE_FEED_RETENTION_HOURS; default 24 h). */
  changeRetentionMs?: number;
  /** changeListenUrl is where the change feed LISTENs: a direct connection (DATABASE_MIGRATION_URL) when db goes through PgBouncer. */
  changeListenUrl?: string;
}

/**
 * serverSettings are the ServerDeps that come from the configuration: what
 * main.ts deploys (and the benchmarks' service runs) with.
 */
export function serverSettings(
  config: Config,
): Omit<ServerDeps, "db" | "replicas" | "log" | "credentials" | "authTokens"> {
  return {
    grpcOptions: config.grpcServerOptions,
    dbHealthIntervalMs: config.dbHealthIntervalMs,
    poolStarvedMs: config.poolStarvedMs,
    streamMaxLifetimeMs: config.streamMaxLifetimeMs,
    streamIdleWriteMs: config.streamIdleWriteMs,
    streamCaps: { perConnection: config.streamMaxPerConnection, perProcess: config.streamMaxPerProcess },
    streamPoolShare: config.streamPoolShare,
    largeReadsMax: config.largeReadsMax,
    largeReadBytesPerSecond: config.largeReadBytesPerSecond,
    largeReadFreeBytes: config.largeReadFreeBytes,
    watchHeartbeatMs: config.watchHeartbeatMs,
    watchPollMs: config.watchPollMs,
    changeRetentionMs: config.changeRetentionMs,
    changeListenUrl: config.databaseMigrationUrl,
  };
}

/** BlogServer is a configured server that has not started listening. */
export interface BlogServer {
  readonly health: HealthStatus;
  /** metrics is this server's Prometheus registry; main.ts serves it on METRICS_ADDRESS. */
  readonly metrics: Registry;
  /** listen binds address (port 0 picks a free one) and returns the bound port. */
  listen(address: string): Promise<number>;
  /** shutdown flips health to NOT_SERVING, ends health watches, lets calls finish for graceMs, then forces. */
  shutdown(graceMs: number): Promise<void>;
}

/** largeRead says which calls may build replies of megabytes from a small request: reads of many users with their posts. */
function largeRead(method: string, request: unknown): boolean {
  return (
    (method === "BatchGetUsers" || method === "ListUsers") && (request as { view?: UserView }).view === UserView.FULL
  );
}

/** apiServices are the services behind authentication, logs and metrics (health and reflection are not). */
export const apiServices = [UserService, PostService];

/**
 * createServer wires repositories, handlers, validation, health and
 * reflection into a grpc-js server; it never listens by itself.
 */
export function createServer({
  db,
  replicas,
  log,
  grpcOptions = serverOptions,
  dbHealthIntervalMs = 1000,
  credentials = ServerCredentials.createInsecure(),
  authTokens,
  streamMaxLifetimeMs = 600_000,
  streamIdleWriteMs = 30_000,
  poolStarvedMs = 10_000,
  streamCaps: caps = { perConnection: 16, perProcess: 256 },
  streamPoolShare,
  largeReadsMax = largeReadDefaults.readsAtOnce,
  largeReadBytesPerSecond = largeReadDefaults.bytesPerSecond,
  largeReadFreeBytes = largeReadDefaults.freeBytes,
  watchHeartbeatMs = 10_000,
  watchPollMs = 1_000,
  changeRetentionMs = 24 * 3_600_000,
  changeListenUrl,
}: ServerDeps): BlogServer {
  const server = new Server(grpcOptions);
  const health = new HealthStatus(
    apiServices.map((s) => s.typeName),
    ServingStatus.NOT_SERVING,
  );
  const logError = (error: unknown, message: string) => log.error({ err: error }, message);
  const observability = instrument({ db, replicas: replicas?.databases, log, services: apiServices });
  // The first middleware sees a call first: observed (logged, counted, traced), then authenticated, then read.
  const middleware: Middleware[] = [
    observability.middleware,
    ...(authTokens === undefined ? [] : [authenticate(authTokens, log)]),
    streamCaps(caps),
    validation,
    takingTurns(
      new PoolShare(largeReadsMax),
      (call, request) => largeRead(call.method, request),
      new ByteRate(largeReadBytesPerSecond, "LARGE_READ_BYTES_PER_SECOND", largeReadFreeBytes),
    ),
  ];
  // With replicas, read-only calls may read from them and writes answer with their WAL position.
  if (replicas !== undefined) middleware.push(readYourWrites(db, log));
  const reader = replicas === undefined ? primaryReader(db) : replicaReader(db, replicas);
  // Replies are sized before they are built, against what grpc-js will send (-1: no limit).
  const sendLimit = Number(
    grpcOptions["grpc.max_send_message_length"] ?? serverOptions["grpc.max_send_message_length"],
  );
  const maxReplyBytes = sendLimit < 0 ? Infinity : sendLimit;
  const streams = { streamLifetimeMs: streamMaxLifetimeMs, streamIdleWriteMs, maxSendBytes: maxReplyBytes };
  const options = { middleware, logError, ...streams };
  const pageTokens = lazyPageTokens(db);
  const limits = {
    maxReplyBytes,
    streamShare: streamPoolShare === undefined ? PoolShare.half(db) : new PoolShare(streamPoolShare),
  };
  // Watchers read the primary: the feed's LISTEN connection and its positions are the primary's.
  const feed = new ChangeWatch(db, {
    heartbeatMs: watchHeartbeatMs,
    pollMs: watchPollMs,
    maxReplyBytes,
    share: limits.streamShare,
    ...(changeListenUrl === undefined ? {} : { listenUrl: changeListenUrl }),
    onNotifierError: (error) =>
      log.warn({ err: error }, "change feed: LISTEN connection lost; watchers poll meanwhile"),
  });
  server.addService(
    serviceDefinition(UserService),
    implement(UserService, userService(new UserRepository(db, reader), pageTokens, limits, feed), options),
  );
  server.addService(
    serviceDefinition(PostService),
    implement(PostService, postService(new PostRepository(db, reader), pageTokens, limits, feed), options),
  );
  server.addService(serviceDefinition(Health), implement(Health, healthService(health), { logError, ...streams }));
  addReflection(server, [...apiServices, Health]);
  // Health follows the database: NOT_SERVING while it does not answer or the pool gives no
  // connection for poolStarvedMs, SERVING when it does again.
  const monitor = monitorDatabase(db, {
    intervalMs: dbHealthIntervalMs,
    timeoutMs: Math.min(Math.max(dbHealthIntervalMs, 500), 2000),
    starvedAfterMs: poolStarvedMs,
    onChange: (verdict) => {
      if (verdict === "serving") log.info("database answers: serving");
      else if (verdict === "unreachable") log.warn("database does not answer: not serving");
      else if (verdict === "read-only") log.warn("no host of DATABASE_URL takes writes: not serving");
      else log.warn({ poolStarvedMs }, "no pooled connection could be had for a while: not serving");
      health.setAll(verdict === "serving" ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    },
  });

  // Request ids past their retention are forgotten hourly (expired ones are
  // already taken over as new; this keeps the table small).
  let pruning: NodeJS.Timeout | undefined;
  const prune = () =>
    pruneRequestIds(db).then(
      (forgotten) => forgotten > 0 && log.info({ forgotten }, "pruned expired request ids"),
      (error: unknown) => log.warn({ err: error }, "pruning request ids failed"),
    );
  // Change feed commits past their retention go every minute, in bounded statements.
  let pruningChanges: NodeJS.Timeout | undefined;
  const pruneFeed = () =>
    pruneChanges(db, changeRetentionMs).then(
      (forgotten) => forgotten > 0 && log.info({ forgotten }, "pruned change feed commits past retention"),
      (error: unknown) => log.warn({ err: error }, "pruning the change feed failed"),
    );

  return {
    health,
    metrics: observability.registry,
    listen: (address) =>
      new Promise((resolve, reject) => {
        server.bindAsync(address, credentials, (error, port) => {
          if (error) return reject(error);
          pruning = setInterval(prune, 3_600_000).unref();
          pruningChanges = setInterval(pruneFeed, 60_000).unref();
          feed.notifier.start();
          monitor.start().then(() => resolve(port), reject);
        });
      }),
    shutdown: (graceMs) =>
      new Promise((resolve) => {
        clearInterval(pruning);
        clearInterval(pruningChanges);
        const monitorStopped = monitor.stop();
        health.setAll(ServingStatus.NOT_SERVING);
        health.close();
        const feedClosed = feed.close();
        const force = setTimeout(() => {
          log.warn({ graceMs }, "shutdown grace period is over: cancelling the calls still running");
          server.forceShutdown();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          observability.close();
          void Promise.all([monitorStopped, feedClosed]).then(() => resolve());
        });
      }),
  };
}
