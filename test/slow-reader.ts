import type { ClientError } from "../src/client/transport.js";

/** SlowReader is a client of a server stream that reads one message when the test asks, and no faster. */
export interface SlowReader<T> {
  /** messages are what it has read so far. */
  readonly messages: T[];
  /** error is the status the stream ended with, once it has; ended is true once it ended OK. */
  readonly state: { error?: ClientError; ended: boolean };
  /** readOne asks for one more message unless a read is pending or the stream is over; it does not wait. */
  readOne(): void;
  /** readToEnd reads on until the stream ends, and returns the status it ended with (undefined: OK). */
  readToEnd(): Promise<ClientError | undefined>;
  /** stop cancels the call (if it still runs). */
  stop(): Promise<void>;
}

/**
 * slowReader paces a grpc-js server stream by hand: between two readOne()
 * calls it takes nothing, so once the client's buffer and the HTTP/2 windows
 * are full the server's writes wait on flow control, as for a client that
 * reads slowly or not at all.
 */
export function slowReader<T>(
  open: (options: { signal: AbortSignal; deadline: number }) => AsyncIterable<T>,
): SlowReader<T> {
  // The deadline only guards against a hang: a stream that never ends fails as DEADLINE_EXCEEDED.
  const controller = new AbortController();
  const iterator = open({ signal: controller.signal, deadline: Date.now() + 60_000 })[Symbol.asyncIterator]();
  const messages: T[] = [];
  const state: { error?: ClientError; ended: boolean } = { ended: false };
  let reading: Promise<void> | undefined;
  const readOne = () => {
    if (reading !== undefined || state.ended || state.error !== undefined) return;
    reading = iterator.next().then(
      (next) => {
        if (next.done) state.ended = true;
        else messages.push(next.value);
        reading = undefined;
      },
      (error: unknown) => {
        state.error = error as ClientError;
        reading = undefined;
      },
    );
  };
  return {
    messages,
    state,
    readOne,
    async readToEnd() {
      while (!state.ended && state.error === undefined) {
        readOne();
        await reading;
      }
      return state.error;
    },
    async stop() {
      controller.abort();
      await reading;
    },
  };
}
