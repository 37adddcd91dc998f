import { status } from "@grpc/grpc-js";
import { BlogClientError } from "./errors.js";
import { pause } from "./pause.js";
import type { ClientCallOptions } from "./transport.js";

/** The reasons a server ends a stream that a new call may simply continue. */
const resumableReasons = new Set(["STREAM_LIFETIME_EXCEEDED", "STREAM_IDLE_WRITE_TIMEOUT", "SERVER_SHUTTING_DOWN"]);

/**
 * resumable: the watch broke for a reason a new call fixes (the server or the
 * database was unreachable, restarted or shut down; the server's stream
 * lifetime ended). Anything else (an expired or invalid token, a denied
 * method, the caller's own deadline or cancel) is the caller's to handle.
 */
export function resumable(error: unknown): boolean {
  if (!(error instanceof BlogClientError)) return false;
  if (error.code === status.UNAVAILABLE) return true;
  return resumableReasons.has(error.errorInfo?.reason ?? "");
}

/** Backoff between resumptions: 0.1 s, doubling up to 5 s, back to 0.1 s once a message arrives. */
const firstBackoffMs = 100;
const maxBackoffMs = 5_000;

/**
 * resumingWatch is a watch (WatchUsers, WatchPosts) that resumes by itself:
 * when the call breaks for a resumable reason it calls again with the
 * resume_token of the last message received, so the caller sees every change
 * once, in order, across server restarts, database restarts and replicas.
 * Breaking out of the loop (or the signal) cancels the call.
 */
export async function* resumingWatch<
  Request extends { resumeToken?: string },
  Response extends { resumeToken: string },
>(
  start: (request: Request, options?: ClientCallOptions) => AsyncIterable<Response>,
  request: Request,
  options: ClientCallOptions = {},
): AsyncGenerator<Response> {
  let resumeToken = request.resumeToken ?? "";
  let backoffMs = firstBackoffMs;
  for (;;) {
    try {
      for await (const message of start({ ...request, resumeToken }, options)) {
        resumeToken = message.resumeToken;
        backoffMs = firstBackoffMs;
        yield message;
      }
      return;
    } catch (error) {
      if (!resumable(error) || options.signal?.aborted === true) throw error;
    }
    await pause(backoffMs, options.signal);
    backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
  }
}
