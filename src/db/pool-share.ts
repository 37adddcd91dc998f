import type { Knex } from "knex";
import { CallCancelled } from "./errors.js";

/**
 * PoolShare lets at most `size` statements of one kind hold a pooled
 * connection at once, so that they can never take the whole pool: the
 * statements of server streams (export chunks) get a share, and unary calls
 * always have the rest. A statement beyond the share waits its turn, in
 * order, before it asks the pool for a connection; a waiter whose call ends
 * (its signal aborts) leaves the line at once.
 */
export class PoolShare {
  private running = 0;
  private readonly line: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a pool share is at least one connection, not ${size}`);
  }

  /** run runs work once fewer than `size` others run; an aborted signal while waiting throws CallCancelled. */
  async run<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    if (signal.aborted) throw new CallCancelled();
    if (this.running < this.size) this.running++;
    else await this.turn(signal);
    try {
      return await work();
    } finally {
      // The slot goes to the first waiter, if any, rather than back to the count.
      const next = this.line.shift();
      if (next === undefined) this.running--;
      else next();
    }
  }

  /** waiting is how many statements wait for their turn (for tests and metrics). */
  get waiting(): number {
    return this.line.length;
  }

  /** half is a share of half of db's pool (at least one connection), the default for streams. */
  static half(db: Knex): PoolShare {
    const max = (db.client.config as Knex.Config).pool?.max ?? 10;
    return new PoolShare(Math.max(1, Math.floor(max / 2)));
  }

  private turn(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener("abort", leave);
        resolve();
      };
      const leave = () => {
        this.line.splice(this.line.indexOf(go), 1);
        reject(new CallCancelled());
      };
      this.line.push(go);
      signal.addEventListener("abort", leave, { once: true });
    });
  }
}
