import { context as otelContext } from "@opentelemetry/api";
import { status } from "@grpc/grpc-js";
import type { CallContext, Middleware } from "../grpc/adapter.js";
import { toServiceError } from "../grpc/errors.js";
import { streamLifetimeExceeded } from "../grpc/stream-lifetime.js";
import { newCallScope, runInCall } from "./call-scope.js";
import type { CallScope } from "./call-scope.js";
import { requestIdKey, requestIdOf } from "./request-id.js";

/**
 * CallObserver is one concern that watches every call: logs, metrics,
 * tracing. Observers never change what a call answers.
 */
export interface CallObserver {
  /** start runs before the handler; it may set the scope's span and trace context. */
  start?(scope: CallScope, context: CallContext): void;
  /** sent runs for each response message handed to grpc-js. */
  sent?(scope: CallScope): void;
  /** end runs once, with the status code the client receives. */
  end(scope: CallScope, code: status): void;
}

const noLog = () => {};

/** The status the client sees: a cancelled or expired call ends so whatever the handler did. */
function finalCode(context: CallContext, error: unknown): status {
  if (streamLifetimeExceeded(context.metadata)) return status.DEADLINE_EXCEEDED;
  if (context.deadline !== undefined && Date.now() >= context.deadline.getTime()) return status.DEADLINE_EXCEEDED;
  if (context.signal.aborted) return status.CANCELLED;
  // toServiceError is the adapter's own mapping; its logging is left to the adapter.
  return error === undefined ? status.OK : toServiceError(error, noLog).code;
}

/**
 * observeCalls runs every handler inside its call scope (so Knex statements,
 * logs and spans know which call they belong to) and tells each observer how
 * the call started and ended. Unary handlers end when their promise settles,
 * server-streaming ones when their iterable finishes, fails or is abandoned.
 */
export function observeCalls(observers: readonly CallObserver[]): Middleware {
  return (next) => (request, context) => {
    const type = context.method.methodKind === "server_streaming" ? "server_stream" : "unary";
    const scope = newCallScope({
      service: context.method.parent.typeName,
      method: context.method.name,
      type,
      peer: context.peer,
      requestId: requestIdOf(context.metadata),
    });
    context.trailers.set(requestIdKey, scope.requestId);
    for (const o of observers) o.start?.(scope, context);
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      const code = finalCode(context, error);
      for (const o of observers) o.end(scope, code);
    };
    const sent = () => {
      scope.messagesSent++;
      for (const o of observers) o.sent?.(scope);
    };
    const inScope = <T>(work: () => T): T => runInCall(scope, () => otelContext.with(scope.traceContext, work));
    let result: unknown;
    try {
      result = inScope(() => next(request, context));
    } catch (error) {
      end(error);
      throw error;
    }
    if (type === "server_stream") return observeStream(result as AsyncIterable<unknown>, inScope, sent, end);
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

/** observeStream pulls each message inside the call's scope and reports how the stream ended. */
async function* observeStream(
  messages: AsyncIterable<unknown>,
  inScope: <T>(work: () => T) => T,
  sent: () => void,
  end: (error?: unknown) => void,
): AsyncGenerator<unknown, void, undefined> {
  let finished = false;
  let iterator: AsyncIterator<unknown> | undefined;
  try {
    iterator = inScope(() => messages[Symbol.asyncIterator]());
    for (;;) {
      const { done, value } = await inScope(() => iterator!.next());
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
      // The consumer stopped early (the client went away): let the handler clean up.
      end();
      await inScope(() => iterator?.return?.());
    }
  }
}
