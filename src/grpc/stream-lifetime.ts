import { ServerInterceptingCall, status } from "@grpc/grpc-js";
import type { Metadata, ServerInterceptor } from "@grpc/grpc-js";
import { ServiceError, errorInfo, toStatus } from "./errors.js";

type Listener = Parameters<ServerInterceptingCall["start"]>[0];

const expired = new WeakSet<Metadata>();

/** streamLifetimeExceeded tells logs and metrics that the call's status is the lifetime's DEADLINE_EXCEEDED. */
export function streamLifetimeExceeded(metadata: Metadata): boolean {
  return expired.has(metadata);
}

/**
 * A server-streaming call that the server ends with DEADLINE_EXCEEDED once it
 * has run for maxMs. Its handler hears a cancellation, as when a client goes
 * away, so it stops and its statements are cancelled. (The cap is not shown
 * as the call's deadline: statement bounds tied to a deadline would outlive a
 * stream that ends early.)
 */
class LifetimeCappedCall extends ServerInterceptingCall {
  private timer: NodeJS.Timeout | undefined;
  private metadata: Metadata | undefined;

  constructor(
    next: ConstructorParameters<typeof ServerInterceptingCall>[0],
    private readonly maxMs: number,
  ) {
    super(next);
  }

  override start(listener: Listener): void {
    // The handler hears of the end once: from the timer or from the transport.
    let cancelled = false;
    const cancel = () => {
      clearTimeout(this.timer);
      if (cancelled) return;
      cancelled = true;
      listener.onCancel();
    };
    this.timer = setTimeout(() => {
      if (this.metadata !== undefined) expired.add(this.metadata);
      const message = `the stream ran for the server's maximum stream lifetime of ${this.maxMs} ms; resume with a new call`;
      const { metadata } = toStatus(
        new ServiceError(status.DEADLINE_EXCEEDED, message, [
          errorInfo("STREAM_LIFETIME_EXCEEDED", { maxMs: String(this.maxMs) }),
        ]),
      );
      // The status queues behind the messages already sent; the handler stops now.
      super.sendStatus({ code: status.DEADLINE_EXCEEDED, details: message, metadata });
      cancel();
    }, this.maxMs);
    super.start({
      onReceiveMetadata: (metadata) => {
        this.metadata = metadata;
        listener.onReceiveMetadata(metadata);
      },
      onReceiveMessage: (message) => listener.onReceiveMessage(message),
      onReceiveHalfClose: () => listener.onReceiveHalfClose(),
      onCancel: cancel,
    });
  }

  override sendStatus(...args: Parameters<ServerInterceptingCall["sendStatus"]>): void {
    clearTimeout(this.timer);
    super.sendStatus(...args);
  }
}

/**
 * streamLifetime caps how long a server-streaming call may run (an export a
 * client stopped reading, or a health watch left open, cannot hold a handler
 * and its database cursor forever). Unary calls are left to their deadlines.
 */
export function streamLifetime(maxMs: number): ServerInterceptor {
  return (descriptor, call) =>
    descriptor.responseStream ? new LifetimeCappedCall(call, maxMs) : new ServerInterceptingCall(call);
}
