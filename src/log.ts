import { pino } from "pino";
import type { Logger } from "pino";
import { PinoPretty } from "pino-pretty";

export type { Logger };

/** LoggerOptions say where lines go and how often they are written. */
export interface LoggerOptions {
  stream?: NodeJS.WriteStream;
  /**
   * flushMs buffers JSON lines to stdout (up to 4 KiB) and writes them at
   * least this often, and at exit; 0 or undefined writes each line at once.
   */
  flushMs?: number;
}

/**
 * createLogger is the service's one logger, level from LOG_LEVEL: JSON lines
 * on stdout for log collectors, or pino-pretty's coloured single lines when
 * stdout is a terminal (a person is reading). With flushMs, lines to stdout
 * are written in blocks of about 4 KiB, at least every flushMs and when the
 * process exits: one write a call cost about a tenth of GetUser's CPU at 16
 * calls in flight (README, LOG_FLUSH_MS). A process killed with SIGKILL loses
 * at most the last flushMs of lines.
 */
export function createLogger(level: string, { stream = process.stdout, flushMs }: LoggerOptions = {}): Logger {
  const options = { level, base: { service: "blog-service" } };
  if (stream.isTTY) {
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
  if (!flushMs || stream !== process.stdout) return pino(options, stream);
  const destination = pino.destination({ dest: 1, minLength: 4096, sync: true });
  setInterval(() => destination.flush(), flushMs).unref();
  process.on("exit", () => destination.flushSync());
  return pino(options, destination);
}
