import { loadConfig } from "./config.js";
import type { Config } from "./config.js";
import { migrateLatest } from "./db/migrator.js";
import { loadAuthTokens } from "./grpc/auth-tokens.js";
import { serverCredentials } from "./grpc/credentials.js";
import { routeGrpcJsLogs } from "./grpc/grpc-js-log.js";
import { openDatabase } from "./db/open.js";
import { createLogger } from "./log.js";
import type { Logger } from "./log.js";
import { startMetricsServer } from "./observability/metrics-server.js";
import { startTracing } from "./observability/tracing.js";
import { apiServices, createServer, serverSettings } from "./server.js";

// The process entry point: read config, open the database, migrate,
// listen, and shut down in order on SIGINT/SIGTERM.

async function main(config: Config, log: Logger): Promise<void> {
  // Before anything makes a span: with no OTLP endpoint the API stays a no-op.
  const tracing = config.tracing ? startTracing() : undefined;
  // Certificates and tokens first: a bad file stops start-up before the database is touched.
  const credentials = serverCredentials(config.tls);
  const authTokens =
    config.authTokensFile === undefined ? undefined : loadAuthTokens(config.authTokensFile, apiServices);
  const { db, replicas, migrator, close: stopDatabase } = await openDatabase(config, log);
  try {
    if (config.migrateOnStart) {
      const applied = await migrateLatest(migrator());
      log.info({ applied }, applied.length > 0 ? "applied migrations" : "database schema is up to date");
    }
  } catch (error) {
    await stopDatabase();
    throw error;
  }
  const server = createServer({ ...serverSettings(config), db, replicas, log, credentials, authTokens });
  const port = await server.listen(config.grpcAddress).catch(async (error: unknown) => {
    await stopDatabase();
    throw error;
  });
  const host = config.grpcAddress.slice(0, config.grpcAddress.lastIndexOf(":"));
  const tls = config.tls === undefined ? "off" : config.tls.clientCaFile === undefined ? "on" : "mutual";
  log.info(
    { address: `${host}:${port}`, tls, authTokens: authTokens?.names ?? "off" },
    `blog-service listening on ${host}:${port}`,
  );
  const metrics =
    config.metricsAddress === undefined
      ? undefined
      : await startMetricsServer(config.metricsAddress, server.metrics).catch(async (error: unknown) => {
          await server.shutdown(0);
          await stopDatabase();
          throw error;
        });
  if (metrics !== undefined) log.info({ metrics: metrics.url }, `metrics on ${metrics.url}`);

  // npm and tsx relay a terminal's signal to the service, which sees the same
  // Ctrl-C two or three times: later signals are ignored, and the grace period
  // already bounds how long stopping can take.
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    await server.shutdown(config.shutdownGraceMs);
    await metrics?.close();
    await stopDatabase();
    await tracing?.shutdown();
    log.info("stopped");
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      stop(signal).then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
}

const config = loadConfig();
const log = createLogger(config.logLevel, { flushMs: config.logFlushMs });
routeGrpcJsLogs(log);
main(config, log).catch((error: unknown) => {
  log.fatal({ err: error }, "blog-service failed to start");
  process.exitCode = 1;
});
