import { closeSync, mkdirSync, openSync } from "node:fs";
import path from "node:path";
import type { BenchOptions, Implementation } from "../args.js";
import { startServer } from "./spawn.js";
import type { RunningServer } from "./spawn.js";

type ServerImplementation = Exclude<Implementation, "pg">;

const entries: Record<ServerImplementation, string> = {
  service: "./service.ts",
  peer: "../peer/server.ts",
  echo: "./echo.ts",
};

/** The service runs as deployed: info logs (to a file), metrics served, no tracing endpoint. */
const serviceEnv = { LOG_LEVEL: "info", METRICS_ADDRESS: "127.0.0.1:0", MIGRATE_ON_START: "0", LOG_SQL: "0" };

/**
 * startAll starts every chosen implementation that is a server, in parallel,
 * on the bench database; each started one (and the service's log file) is
 * registered in cleanups, even when another fails to start.
 */
export async function startAll(
  options: Pick<BenchOptions, "implementations" | "pool" | "profile">,
  databaseUrl: string,
  tmpDir: string,
  cleanups: (() => Promise<unknown>)[],
): Promise<Map<Implementation, RunningServer>> {
  const env = { DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: String(options.pool) };
  mkdirSync(tmpDir, { recursive: true });
  const logFd = openSync(path.join(tmpDir, "service.log"), "w");
  cleanups.push(async () => closeSync(logFd));
  const wanted = options.implementations.filter((i): i is ServerImplementation => i !== "pg");
  const started = await Promise.allSettled(
    wanted.map((impl) =>
      startServer(impl, new URL(entries[impl], import.meta.url), {
        env: impl === "service" ? { ...env, ...serviceEnv } : env,
        nodeArgs: options.profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(tmpDir, "profiles", impl)}`] : [],
        stdoutFd: impl === "service" ? logFd : undefined,
      }),
    ),
  );
  const servers = new Map<Implementation, RunningServer>();
  for (const [i, result] of started.entries()) {
    if (result.status === "fulfilled") {
      servers.set(wanted[i]!, result.value);
      cleanups.push(() => result.value.stop());
    }
  }
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return servers;
}
