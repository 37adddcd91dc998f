import { pino } from "pino";
import type { Logger } from "pino";
import { PinoPretty } from "pino-pretty";

export type { Logger };

/**
 * createLogger is the service's one logger, level from LOG_LEVEL: JSON lines
 * on stdout for log collectors, or pino-pretty's coloured single lines when
 * stdout is a terminal (a person is reading).
 */
export function createLogger(level: string, stream: NodeJS.WriteStream = process.stdout): Logger {
  const options = { level, base: { service: "blog-service" } };
  if (!stream.isTTY) return pino(options, stream);
  return pino(
    options,
    PinoPretty({
      destination: stream,
      colorize: true,
      singleLine: true,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,service",
    }),
  );
}
