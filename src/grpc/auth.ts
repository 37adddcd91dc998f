import { status } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import type { Middleware } from "./adapter.js";
import type { AuthTokens } from "./auth-tokens.js";
import { ServiceError, errorInfo } from "./errors.js";

/**
 * authenticate admits a call only with a bearer token from tokens that may
 * call its method (UNAUTHENTICATED / PERMISSION_DENIED otherwise), before
 * the request is looked at. The admitted token's name becomes the call's
 * `caller` (for logs), and the `authorization` value is removed from the
 * metadata handlers see, so nothing downstream can log it; refusals are
 * logged with the token's name when it is known, never the token. Health and
 * reflection are served without it: they come from load balancers and people
 * with grpcurl, carry no service token, and reveal no data.
 */
export function authenticate(tokens: AuthTokens, log: Logger): Middleware {
  return (next) => (request, call) => {
    const method = `${call.service}/${call.method}`;
    const verdict = tokens.check(call.metadata.get("authorization"), method);
    if (verdict.code === status.OK) {
      call.metadata.remove("authorization");
      call.caller = verdict.name;
      return next(request, call);
    }
    call.metadata.remove("authorization");
    log.warn(
      { method: `/${method}`, grpcCode: status[verdict.code], peer: call.peer, caller: verdict.name },
      `${method} ${status[verdict.code]}: ${verdict.message}`,
    );
    const info = errorInfo(verdict.reason, verdict.name === undefined ? {} : { token: verdict.name, method });
    throw new ServiceError(verdict.code, verdict.message, [info]);
  };
}
