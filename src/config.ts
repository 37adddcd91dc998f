import path from "node:path";
import type { ChannelOptions } from "@grpc/grpc-js";
import type { PreparedStatementsMode } from "./db/prepared-statements.js";
import type { TlsFiles } from "./grpc/credentials.js";
import { serverOptionVariables, serverOptions } from "./grpc/server-options.js";

/** Config is everything the service reads from its environment, parsed once. */
export interface Config {
  /** databaseUrl is the PostgreSQL to use; undefined starts the embedded one. */
  databaseUrl: string | undefined;
  /** databaseReplicaUrls are hot standbys for reads that tolerate lag (DATABASE_REPLICA_URLS); empty: none. */
  databaseReplicaUrls: string[];
  /** databaseMigrationUrl is a direct connection for migrations when DATABASE_URL goes through a pooler. */
  databaseMigrationUrl: string | undefined;
  /** embeddedDataDir keeps the embedded PostgreSQL's data between runs. */
  embeddedDataDir: string;
  grpcAddress: string;
  /** grpcServerOptions are serverOptions with the GRPC_* overrides applied. */
  grpcServerOptions: ChannelOptions;
  logLevel: string;
  /** logFlushMs: the service's log lines are buffered and written at least this often (LOG_FLUSH_MS; 0: each at once). */
  logFlushMs: number;
  logSql: boolean;
  /** metricsAddress is where `/metrics` is served; undefined serves no metrics. */
  metricsAddress: string | undefined;
  migrateOnStart: boolean;
  poolMax: number;
  /** preparedStatements is DATABASE_PREPARED_STATEMENTS: auto (direct connections only), on or off. */
  preparedStatements: PreparedStatementsMode;
  /** poolAcquireTimeoutMs bounds the wait for a pooled connection; past it the call is UNAVAILABLE. */
  poolAcquireTimeoutMs: number;
  shutdownGraceMs: number;
  /** dbHealthIntervalMs is how often health probes the database with `SELECT 1`. */
  dbHealthIntervalMs: number;
  /** poolStarvedMs is how long callers may wait on a full pool before health says NOT_SERVING (DATABASE_POOL_STARVED_MS). */
  poolStarvedMs: number;
  /** tracing is on when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or ..._TRACES_ENDPOINT). */
  tracing: boolean;
  /** tls names the certificate files (TLS_CERT, TLS_KEY, TLS_CLIENT_CA); undefined serves plaintext. */
  tls: TlsFiles | undefined;
  /** authTokensFile holds the bearer tokens (AUTH_TOKENS_FILE); undefined turns authentication off. */
  authTokensFile: string | undefined;
  /** streamMaxLifetimeMs ends server streams that run longer (STREAM_MAX_LIFETIME_MS). */
  streamMaxLifetimeMs: number;
  /** streamIdleWriteMs ends server streams whose client takes no message for that long (STREAM_IDLE_WRITE_TIMEOUT_MS). */
  streamIdleWriteMs: number;
  /** streamMaxPerConnection caps the server streams one connection may have open (STREAM_MAX_PER_CONNECTION). */
  streamMaxPerConnection: number;
  /** streamMaxPerProcess caps the server streams the process serves at once (STREAM_MAX_PER_PROCESS). */
  streamMaxPerProcess: number;
  /** streamPoolShare is how many pooled connections stream statements may hold at once (STREAM_POOL_SHARE). */
  streamPoolShare: number;
  /** largeReadsMax is how many BatchGetUsers and ListUsers with view FULL run at once (LARGE_READS_MAX). */
  largeReadsMax: number;
  /** largeReadBytesPerSecond is the reply bytes per second those reads may build together (LARGE_READ_BYTES_PER_SECOND). */
  largeReadBytesPerSecond: number;
  /** largeReadFreeBytes is how much of each of those replies the byte budget does not count (LARGE_READ_FREE_BYTES). */
  largeReadFreeBytes: number;
  /** watchHeartbeatMs: an idle watch sends a heartbeat this often (WATCH_HEARTBEAT_INTERVAL_MS). */
  watchHeartbeatMs: number;
  /** watchPollMs: watchers read the feed this often when no notification wakes them (WATCH_POLL_INTERVAL_MS). */
  watchPollMs: number;
  /** changeRetentionMs: how long the change feed keeps commits (CHANGE_FEED_RETENTION_HOURS). */
  changeRetentionMs: number;
}

/**
 * largeReadDefaults are the defaults of the budgets of BatchGetUsers and
 * ListUsers with view FULL: reads at once (LARGE_READS_MAX), reply bytes per
 * second (LARGE_READ_BYTES_PER_SECOND) and the bytes of each reply that rate
 * does not count (LARGE_READ_FREE_BYTES).
 */
export const largeReadDefaults = { readsAtOnce: 2, bytesPerSecond: 4 * 2 ** 20, freeBytes: 256 * 2 ** 10 };

const logLevels = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

const yes = ["1", "true", "yes", "on"];
const no = ["0", "false", "no", "off"];

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (yes.includes(value.toLowerCase())) return true;
  if (no.includes(value.toLowerCase())) return false;
  throw new Error(`${name} must be 1/true/yes/on or 0/false/no/off, got "${value}"`);
}

function preparedStatements(env: NodeJS.ProcessEnv): PreparedStatementsMode {
  const value = (env.DATABASE_PREPARED_STATEMENTS ?? "").toLowerCase();
  if (value === "" || value === "auto") return "auto";
  if (yes.includes(value)) return "on";
  if (no.includes(value)) return "off";
  throw new Error(
    `DATABASE_PREPARED_STATEMENTS must be auto, 1/true/yes/on or 0/false/no/off, got "${env.DATABASE_PREPARED_STATEMENTS}"`,
  );
}

function integerFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: 0 | 1): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`${name} must be a ${min === 1 ? "positive" : "non-negative"} integer, got "${value}"`);
  }
  return n;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return integerFrom(env, name, fallback, 1);
}

function grpcServerOptions(env: NodeJS.ProcessEnv): ChannelOptions {
  const options: ChannelOptions = { ...serverOptions };
  for (const [name, key] of Object.entries(serverOptionVariables))
    options[key] = positiveInt(env, name, serverOptions[key]);
  return options;
}

function tlsFiles(env: NodeJS.ProcessEnv): TlsFiles | undefined {
  const cert = env.TLS_CERT || undefined;
  const key = env.TLS_KEY || undefined;
  const clientCa = env.TLS_CLIENT_CA || undefined;
  if ((cert === undefined) !== (key === undefined)) throw new Error("TLS_CERT and TLS_KEY must be set together");
  if (cert === undefined || key === undefined) {
    if (clientCa !== undefined) throw new Error("TLS_CLIENT_CA needs TLS_CERT and TLS_KEY: mutual TLS runs over TLS");
    return undefined;
  }
  return {
    certFile: path.resolve(cert),
    keyFile: path.resolve(key),
    clientCaFile: clientCa === undefined ? undefined : path.resolve(clientCa),
  };
}

function databaseUrls(env: NodeJS.ProcessEnv, name: string): string[] {
  const urls = (env[name] ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  urls.forEach((url, i) => {
    // The value is not echoed: it may hold a password.
    if (!URL.canParse(url) || !/^postgres(ql)?:$/.test(new URL(url).protocol))
      throw new Error(`${name} must be comma-separated postgres:// URLs; entry ${i + 1} is not`);
  });
  return urls;
}

/** loadConfig reads and checks the environment; a bad value stops start-up with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL || "info";
  if (!logLevels.has(logLevel)) throw new Error(`LOG_LEVEL must be one of ${[...logLevels].join(", ")}`);
  const poolMax = positiveInt(env, "DATABASE_POOL_MAX", 10);
  const streamPoolShare = positiveInt(env, "STREAM_POOL_SHARE", Math.max(1, Math.floor(poolMax / 2)));
  if (streamPoolShare > poolMax) throw new Error("STREAM_POOL_SHARE must be at most DATABASE_POOL_MAX");
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    databaseReplicaUrls: databaseUrls(env, "DATABASE_REPLICA_URLS"),
    databaseMigrationUrl: env.DATABASE_MIGRATION_URL || undefined,
    embeddedDataDir: path.resolve(env.EMBEDDED_POSTGRES_DIR || ".data/postgres"),
    grpcAddress: env.GRPC_ADDRESS || "127.0.0.1:50051",
    grpcServerOptions: grpcServerOptions(env),
    logLevel,
    logFlushMs: integerFrom(env, "LOG_FLUSH_MS", 200, 0),
    logSql: flag(env, "LOG_SQL", false),
    metricsAddress: env.METRICS_ADDRESS || undefined,
    migrateOnStart: flag(env, "MIGRATE_ON_START", true),
    poolMax,
    preparedStatements: preparedStatements(env),
    poolAcquireTimeoutMs: positiveInt(env, "DATABASE_ACQUIRE_TIMEOUT_MS", 2_000),
    shutdownGraceMs: positiveInt(env, "SHUTDOWN_GRACE_MS", 10_000),
    dbHealthIntervalMs: positiveInt(env, "DB_HEALTH_INTERVAL_MS", 1000),
    poolStarvedMs: positiveInt(env, "DATABASE_POOL_STARVED_MS", 10_000),
    tracing: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    tls: tlsFiles(env),
    authTokensFile: env.AUTH_TOKENS_FILE ? path.resolve(env.AUTH_TOKENS_FILE) : undefined,
    streamMaxLifetimeMs: positiveInt(env, "STREAM_MAX_LIFETIME_MS", 600_000),
    streamIdleWriteMs: positiveInt(env, "STREAM_IDLE_WRITE_TIMEOUT_MS", 30_000),
    streamMaxPerConnection: positiveInt(env, "STREAM_MAX_PER_CONNECTION", 16),
    streamMaxPerProcess: positiveInt(env, "STREAM_MAX_PER_PROCESS", 256),
    streamPoolShare,
    largeReadsMax: positiveInt(env, "LARGE_READS_MAX", largeReadDefaults.readsAtOnce),
    largeReadBytesPerSecond: positiveInt(env, "LARGE_READ_BYTES_PER_SECOND", largeReadDefaults.bytesPerSecond),
    largeReadFreeBytes: integerFrom(env, "LARGE_READ_FREE_BYTES", largeReadDefaults.freeBytes, 0),
    watchHeartbeatMs: positiveInt(env, "WATCH_HEARTBEAT_INTERVAL_MS", 10_000),
    watchPollMs: positiveInt(env, "WATCH_POLL_INTERVAL_MS", 1_000),
    changeRetentionMs: positiveInt(env, "CHANGE_FEED_RETENTION_HOURS", 24) * 3_600_000,
  };
}
