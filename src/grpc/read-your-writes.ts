import type { Knex } from "knex";
import { walPosition } from "../db/read-routing.js";
import type { Logger } from "../log.js";
import { minLsnKey } from "../protocol/keys.js";
import type { Middleware } from "./adapter.js";

/**
 * readYourWrites is the server half of read-your-writes over read replicas:
 * a call that may write (anything but NO_SIDE_EFFECTS) answers, once it has
 * succeeded (committed), with the primary's WAL position in the
 * `x-blog-min-lsn` trailer, which the client sends back on its later reads
 * (the call scope's minLsn; see db/read-routing.ts). The position costs one
 * `SELECT pg_current_wal_lsn()` per write; if that fails the write still
 * succeeds, without the trailer.
 */
export function readYourWrites(primary: Knex, log: Logger): Middleware {
  return (next) => (request, call) => {
    if (call.readOnly) return next(request, call);
    return Promise.resolve(next(request, call)).then(async (response) => {
      try {
        call.trailers.set(minLsnKey, await walPosition(primary));
      } catch (error) {
        log.warn({ err: error }, "could not read the WAL position after a write: no read-your-writes trailer");
      }
      return response;
    });
  };
}
