import path from "node:path";
import type { ChannelOptions } from "@grpc/grpc-js";
import { serverOptionVariables, serverOptions } from "./grpc/server-options.js";

/** Config is everything the service reads from its environment, parsed once. */
export interface Config {
  /** databaseUrl is the PostgreSQL to use; undefined starts the embedded one. */
  databaseUrl: string | undefined;
  /** embeddedDataDir keeps the embedded PostgreSQL's data between runs. */
  embeddedDataDir: string;
  grpcAddress: string;
  /** grpcServerOptions are serverOptions with the GRPC_* overrides applied. */
  grpcServerOptions: ChannelOptions;
  logLevel: string;
  logSql: boolean;
  /** metricsAddress is where `/metrics` is served; undefined serves no metrics. */
  metricsAddress: string | undefined;
  migrateOnStart: boolean;
  poolMax: number;
  shutdownGraceMs: number;
  /** tracing is on when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or ..._TRACES_ENDPOINT). */
  tracing: boolean;
}

const logLevels = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (["1", "true", "yes", "on"].includes(value.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(value.toLowerCase())) return false;
  throw new Error(`${name} must be 1/true/yes/on or 0/false/no/off, got "${value}"`);
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

function grpcServerOptions(env: NodeJS.ProcessEnv): ChannelOptions {
  const options: ChannelOptions = { ...serverOptions };
  for (const [name, key] of Object.entries(serverOptionVariables))
    options[key] = positiveInt(env, name, serverOptions[key]);
  return options;
}

/** loadConfig reads and checks the environment; a bad value stops start-up with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL || "info";
  if (!logLevels.has(logLevel)) throw new Error(`LOG_LEVEL must be one of ${[...logLevels].join(", ")}`);
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    embeddedDataDir: path.resolve(env.EMBEDDED_POSTGRES_DIR || ".data/postgres"),
    grpcAddress: env.GRPC_ADDRESS || "127.0.0.1:50051",
    grpcServerOptions: grpcServerOptions(env),
    logLevel,
    logSql: flag(env, "LOG_SQL", false),
    metricsAddress: env.METRICS_ADDRESS || undefined,
    migrateOnStart: flag(env, "MIGRATE_ON_START", true),
    poolMax: positiveInt(env, "DATABASE_POOL_MAX", 10),
    shutdownGraceMs: positiveInt(env, "SHUTDOWN_GRACE_MS", 10_000),
    tracing: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
  };
}
