import { pino } from "pino";
import type { Logger } from "pino";

export type { Logger };

/** createLogger is the service's one logger: JSON lines on stdout, level from LOG_LEVEL. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "blog-service" } });
}
