import type { PoolShare } from "../db/pool-share.js";
import type { Middleware } from "./adapter.js";
import type { CallContext } from "./call-context.js";

/**
 * takingTurns runs the unary calls that `applies` picks one share's turn at a
 * time: at most `share.size` of them at once, reply encoding included (the
 * adapter encodes inside the handler the middleware wraps); the rest wait, in
 * order, bounded by their deadline. Reads whose replies take megabytes
 * (BatchGetUsers and ListUsers with view FULL) then cannot take every core
 * from the calls around them, however many callers send them.
 */
export function takingTurns(
  share: PoolShare,
  applies: (context: CallContext, request: unknown) => boolean,
): Middleware {
  return (next) => (request, context) =>
    context.type === "unary" && applies(context, request)
      ? share.run(context.signal, async () => next(request, context))
      : next(request, context);
}
