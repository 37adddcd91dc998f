import { status } from "@grpc/grpc-js";
import type { Middleware } from "../grpc/adapter.js";
import { endedBy } from "../grpc/call-context.js";
import type { CallContext } from "../grpc/call-context.js";
import { toServiceError } from "../grpc/errors.js";

/**
 * CallObserver is one concern that watches every call: logs, metrics,
 * tracing. Observers never change what a call answers.
 */
export interface CallObserver {
  /** start runs before the handler; it may set the call's span. */
  start?(call: CallContext): void;
  /** sent runs for each response message handed to grpc-js. */
  sent?(call: CallContext): void;
  /** end runs once, with the status code the client receives. */
  end(call: CallContext, code: status): void;
}

const noLog = () => {};

/** The status the client sees: a call ended by the server or its client, or expired, ends so whatever the handler did. */
function finalCode(call: CallContext, error: unknown): status {
  const ended = endedBy(call);
  if (ended !== undefined) return ended.code;
  if (call.deadline !== undefined && Date.now() >= call.deadline) return status.DEADLINE_EXCEEDED;
  // toServiceError is the adapter's own mapping; its logging is left to the adapter.
  return error === undefined ? status.OK : toServiceError(error, noLog).code;
}

/**
 * observeCalls tells each observer how every call started and ended. Unary
 * handlers end when their promise settles, server-streaming ones when their
 * iterable finishes, fails or is abandoned.
 */
export function observeCalls(observers: readonly CallObserver[]): Middleware {
  return (next) => (request, call) => {
    for (const o of observers) o.start?.(call);
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      const code = finalCode(call, error);
      for (const o of observers) o.end(call, code);
    };
    const sent = () => {
      call.counters.messagesSent++;
      for (const o of observers) o.sent?.(call);
    };
    let result: unknown;
    try {
      result = next(request, call);
    } catch (error) {
      end(error);
      throw error;
    }
    if (call.type === "server_stream") return observeStream(result as AsyncIterable<unknown>, sent, end);
    return Promise.resolve(result).then(
      (response) => {
        sent();
        end();
        return response;
      },
      (error: unknown) => {
        end(error);
        throw error;
      },
    );
  };
}

/** observeStream counts each message and reports how the stream ended. */
async function* observeStream(
  messages: AsyncIterable<unknown>,
  sent: () => void,
  end: (error?: unknown) => void,
): AsyncGenerator<unknown, void, undefined> {
  let finished = false;
  let iterator: AsyncIterator<unknown> | undefined;
  try {
    iterator = messages[Symbol.asyncIterator]();
    for (;;) {
      const { done, value } = await iterator.next();
      if (done) break;
      sent();
      yield value;
    }
    finished = true;
    end();
  } catch (error) {
    finished = true;
    end(error);
    throw error;
  } finally {
    if (!finished) {
      // The consumer stopped early (the client went away, the lifetime ran out): let the handler clean up.
      end();
      await iterator?.return?.();
    }
  }
}
