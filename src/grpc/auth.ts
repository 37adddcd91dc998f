import { ServerInterceptingCall, status } from "@grpc/grpc-js";
import type { Metadata, ServerInterceptor } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import type { AuthTokens } from "./auth-tokens.js";
import { ServiceError, errorInfo, toStatus } from "./errors.js";

// Health checks come from load balancers and orchestrators, reflection from
// people with grpcurl: neither carries a service token, and neither reveals data.
const openPrefixes = ["/grpc.health.v1.Health/", "/grpc.reflection."];

const callers = new WeakMap<Metadata, string>();

/** authenticatedCaller is the name of the token a call was admitted with, for logs. */
export function authenticatedCaller(metadata: Metadata): string | undefined {
  return callers.get(metadata);
}

/**
 * authInterceptor admits a call only with a bearer token from tokens that may
 * call its method (UNAUTHENTICATED / PERMISSION_DENIED otherwise), before the
 * request is read or any handler runs. The `authorization` value is removed
 * from the metadata handlers see, so nothing downstream can log it; rejections
 * are logged with the token's name when it is known, never the token.
 */
export function authInterceptor(tokens: AuthTokens, log: Logger): ServerInterceptor {
  return (descriptor, call) => {
    if (openPrefixes.some((prefix) => descriptor.path.startsWith(prefix))) return new ServerInterceptingCall(call);
    const method = descriptor.path.slice(1);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, admit) => {
            const verdict = tokens.check(metadata.get("authorization"), method);
            if (verdict.code === status.OK) {
              metadata.remove("authorization");
              callers.set(metadata, verdict.name);
              admit(metadata);
              return;
            }
            log.warn(
              { method: descriptor.path, grpcCode: status[verdict.code], peer: call.getPeer(), caller: verdict.name },
              `${method} ${status[verdict.code]}: ${verdict.message}`,
            );
            const info = errorInfo(verdict.reason, verdict.name === undefined ? {} : { token: verdict.name, method });
            const { metadata: trailers } = toStatus(new ServiceError(verdict.code, verdict.message, [info]));
            call.sendStatus({ code: verdict.code, details: verdict.message, metadata: trailers });
          },
        }),
    });
  };
}
