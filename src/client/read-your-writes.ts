import { InterceptingCall } from "@grpc/grpc-js";
import type { Interceptor } from "@grpc/grpc-js";
import { minLsnKey } from "../protocol/keys.js";
import { formatLsn, minLsnOf } from "../protocol/lsn.js";

/**
 * readYourWrites is the client half of read-your-writes over read replicas:
 * it remembers the highest `x-blog-min-lsn` trailer any call of this client
 * received (writes send the primary's WAL position after their commit) and
 * sends it with every later call, so the server answers reads from a replica
 * only once it has replayed this client's writes. A position the caller sets
 * in a call's own metadata wins when it is higher. One interceptor serves one
 * client: clients do not share their positions.
 */
export function readYourWrites(): Interceptor {
  let highest: bigint | undefined;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        const own = minLsnOf(metadata);
        if (highest !== undefined && (own === undefined || highest > own)) metadata.set(minLsnKey, formatLsn(highest));
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            const seen = minLsnOf(status.metadata);
            if (seen !== undefined && (highest === undefined || seen > highest)) highest = seen;
            nextStatus(status);
          },
        });
      },
    });
}
