import { loadConfig } from "../../src/config.js";
import { openDatabase } from "../../src/db/open.js";
import { createLogger } from "../../src/log.js";
import { startMetricsServer } from "../../src/observability/metrics-server.js";
import { createServer, serverSettings } from "../../src/server.js";
import { answerOrchestrator } from "./child.js";

// `service`: our server as src/main.ts deploys it (same config, logger, Knex
// pool, grpc-js options, createServer with its validation, call logging and
// metrics, and the /metrics endpoint), started by bench/run.ts with
// DATABASE_URL, DATABASE_POOL_MAX, LOG_LEVEL=info and METRICS_ADDRESS; its
// stdout (the log) goes to a file. A Knex 'query' listener counts the SQL
// statements it sends.

const config = loadConfig();
const log = createLogger(config.logLevel, { flushMs: config.logFlushMs });
const { db, close } = await openDatabase(config, log);
let statements = 0;
db.on("query", () => statements++);
const server = createServer({ ...serverSettings(config), db, log });
const port = await server.listen("127.0.0.1:0");
const metrics =
  config.metricsAddress === undefined ? undefined : await startMetricsServer(config.metricsAddress, server.metrics);
answerOrchestrator({
  port,
  statements: () => statements,
  stop: async () => {
    await server.shutdown(1000);
    await metrics?.close();
    await close();
  },
});
