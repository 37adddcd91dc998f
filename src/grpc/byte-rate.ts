import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { anyPack, durationFromMs } from "@bufbuild/protobuf/wkt";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { CallCancelled } from "../db/errors.js";
import { ServiceError, errorInfo } from "./errors.js";

/**
 * ByteRate is a budget of reply bytes per second that a kind of call shares:
 * a token bucket that holds at most one second's worth and may go into debt.
 * A call waits until the budget is out of debt, runs, and then pays for the
 * reply it built (or read and refused), by its size beyond the first
 * `freeBytesPerReply`; so over time the calls build no more than
 * `bytesPerSecond` of replies larger than that, however many callers send
 * them and however large each reply turns out to be, while replies of
 * ordinary size (a listing's page) never wait on the budget.
 */
export class ByteRate {
  private balance: number;
  private at = performance.now();

  /** variable names the setting of the rate, for the message a refused caller reads. */
  constructor(
    readonly bytesPerSecond: number,
    private readonly variable: string,
    readonly freeBytesPerReply = 0,
  ) {
    if (!(bytesPerSecond > 0)) throw new Error(`a byte rate is positive, not ${bytesPerSecond}`);
    if (!(freeBytesPerReply >= 0)) throw new Error(`free bytes per reply are 0 or more, not ${freeBytesPerReply}`);
    this.balance = bytesPerSecond;
  }

  /** debtMs is how long, from now, until the budget is out of debt (0: it is not in debt). */
  debtMs(): number {
    this.refill();
    return this.balance >= 0 ? 0 : (-this.balance / this.bytesPerSecond) * 1000;
  }

  /** pay pays for a reply of `bytes`: what it takes beyond the free bytes per reply. */
  pay(bytes: number): void {
    this.refill();
    this.balance -= Math.max(0, bytes - this.freeBytesPerReply);
  }

  /**
   * turn waits until the budget is out of debt. A call whose deadline would
   * pass first is refused at once with RESOURCE_EXHAUSTED (reason
   * LARGE_READ_BUDGET) and a RetryInfo of the wait; one cancelled while it
   * waits stops waiting.
   */
  async turn(signal: AbortSignal, deadline: number | undefined): Promise<void> {
    const waitMs = this.debtMs();
    if (waitMs === 0) return;
    if (deadline !== undefined && Date.now() + waitMs >= deadline) throw this.exhausted(waitMs);
    await sleep(Math.ceil(waitMs), undefined, { signal }).catch(() => {
      throw new CallCancelled();
    });
  }

  private refill(): void {
    const now = performance.now();
    this.balance = Math.min(this.bytesPerSecond, this.balance + ((now - this.at) / 1000) * this.bytesPerSecond);
    this.at = now;
  }

  private exhausted(waitMs: number): ServiceError {
    const seconds = (waitMs / 1000).toFixed(1);
    return new ServiceError(
      status.RESOURCE_EXHAUSTED,
      `reads of many users with their posts have used the server's budget of ${this.bytesPerSecond} reply bytes per second (${this.variable})` +
        (this.freeBytesPerReply > 0 ? `, counted beyond each reply's first ${this.freeBytesPerReply} bytes; ` : "; ") +
        `retry in ${seconds} s, with a later deadline, or ask for fewer users or view BASIC`,
      [
        errorInfo("LARGE_READ_BUDGET", { bytesPerSecond: String(this.bytesPerSecond) }),
        anyPack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: durationFromMs(Math.ceil(waitMs)) })),
      ],
    );
  }
}
