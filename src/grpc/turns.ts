import type { PoolShare } from "../db/pool-share.js";
import type { Middleware } from "./adapter.js";
import type { ByteRate } from "./byte-rate.js";
import type { CallContext } from "./call-context.js";
import { ReplyTooLarge } from "./stream-budget.js";

/**
 * takingTurns runs the unary calls that `applies` picks one share's turn at a
 * time: at most `share.size` of them at once, reply encoding included (the
 * adapter encodes inside the handler the middleware wraps); the rest wait, in
 * order, bounded by their deadline. They also build no more reply bytes per
 * second than `rate` allows: a call whose turn comes while the budget is in
 * debt waits, or is refused if its deadline would pass first. A call refused
 * for its reply's size (ReplyTooLarge) pays for the rows it read, so asking
 * for oversized replies over and over is bounded by the budget too.
 * Reads whose replies take megabytes (BatchGetUsers and ListUsers with view
 * FULL) then cannot take every core from the calls around them, however many
 * callers send them.
 */
export function takingTurns(
  share: PoolShare,
  applies: (context: CallContext, request: unknown) => boolean,
  rate: ByteRate,
): Middleware {
  return (next) => (request, context) =>
    context.type === "unary" && applies(context, request)
      ? share.run(context.cancellation.signal, async () => {
          await rate.turn(context.cancellation.signal, context.deadline);
          let reply: unknown;
          try {
            reply = await next(request, context);
          } catch (error) {
            if (error instanceof ReplyTooLarge) rate.pay(error.bytes);
            throw error;
          }
          // The innermost step hands back the encoded reply: its size is what it cost.
          rate.pay((reply as Uint8Array).byteLength);
          return reply;
        })
      : next(request, context);
}
