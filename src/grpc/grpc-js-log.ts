import { format } from "node:util";
import { setLogger } from "@grpc/grpc-js";
import type { Logger } from "../log.js";

const refusedEntry = /Failed to add metadata entry ([^:\s]+):/;

/**
 * redactGrpcJsMessage keeps credentials out of what grpc-js logs: it writes
 * the value of a metadata entry it refuses (a bearer token holding a tab or a
 * non-ASCII character) in full, so such a line keeps the key and drops the rest.
 */
export function redactGrpcJsMessage(text: string): string {
  const refused = refusedEntry.exec(text);
  return refused === null ? text : `Failed to add metadata entry ${refused[1]} (its value is not logged)`;
}

/**
 * routeGrpcJsLogs sends grpc-js's own log lines (by default console.error,
 * unredacted) to the service log as JSON, redacted. grpc-js has one logger per
 * process: main.ts calls this once.
 */
export function routeGrpcJsLogs(log: Logger): void {
  const write =
    (level: "warn" | "info" | "debug") =>
    (...args: unknown[]) =>
      log[level]({ grpcJs: redactGrpcJsMessage(format(...args)) }, "grpc-js");
  setLogger({ error: write("warn"), info: write("info"), debug: write("debug") });
}
