import { until } from "./poll.js";

/** A message of WatchUsers or WatchPosts, as the tests read it. */
export interface WatchMessage<C> {
  changes: C[];
  resumeToken: string;
}

/**
 * Recorder reads a watch in the background and keeps what came: every
 * message, every change, the last resume token, and the error it ended with.
 */
export class Recorder<C> {
  readonly messages: WatchMessage<C>[] = [];
  readonly changes: C[] = [];
  token = "";
  error: unknown;
  readonly done: Promise<void>;

  constructor(stream: AsyncIterable<WatchMessage<C>>) {
    this.done = (async () => {
      try {
        for await (const message of stream) {
          this.messages.push(message);
          this.changes.push(...message.changes);
          this.token = message.resumeToken;
        }
      } catch (error) {
        this.error = error;
      }
    })();
  }

  /** started waits for the first message (changes or the first heartbeat): the watch is reading. */
  async started(): Promise<void> {
    await until("the watch sent its first message", () => this.messages.length > 0 || this.error !== undefined);
    if (this.error !== undefined) throw this.error;
  }

  /** sees waits until a change matching `match` has come. */
  async sees(what: string, match: (change: C) => boolean, timeoutMs = 20_000): Promise<void> {
    await until(what, () => this.changes.some(match) || this.error !== undefined, { timeoutMs });
    if (this.error !== undefined) throw this.error;
  }
}
