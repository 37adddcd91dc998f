import { unbound } from "../call/scope.js";

interface Waiter<V> {
  resolve(value: V): void;
  reject(error: unknown): void;
}

/**
 * Batcher coalesces the loads that arrive during one turn of the event loop
 * into a single call of `run` (DataLoader-style): under concurrency, N point
 * reads become one statement (the repositories' `WHERE id = any(...)`). A batch of several calls
 * runs unbound by any one caller's deadline or cancel.
 */
export class Batcher<K, V> {
  private pending = new Map<K, Waiter<V>[]>();
  private scheduled = false;

  /** run receives distinct keys and returns one value per key (undefined: none). */
  constructor(
    private readonly run: (keys: K[]) => Promise<Map<K, V>>,
    private readonly missing: V,
  ) {}

  load(key: K): Promise<V> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(key, [{ resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    const load = () => this.run([...batch.keys()]);
    // A batch serving one call stays bound by that call's deadline; one serving
    // several (two calls may ask for the same key) runs unbound.
    const calls = [...batch.values()].reduce((n, waiters) => n + waiters.length, 0);
    (calls === 1 ? load() : unbound(load)).then(
      (values) => {
        for (const [key, waiters] of batch) for (const w of waiters) w.resolve(values.get(key) ?? this.missing);
      },
      (error: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(error);
      },
    );
  }
}

/**
 * WriteBatcher coalesces the writes of one event-loop turn into one statement
 * (`runMany`, e.g. one INSERT of many rows). A failed batch is split in halves and
 * retried down to single writes, so every caller gets its own outcome (one
 * caller's bad row never fails another's) in O(log n) extra statements.
 */
export class WriteBatcher<I, O> {
  private pending: { item: I; waiter: Waiter<O> }[] = [];

  constructor(private readonly runMany: (items: I[]) => Promise<O[]>) {}

  write(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, waiter: { resolve, reject } });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    // A batch of one serves one call: it stays bound by that call's deadline.
    if (batch.length === 1) void this.settle(batch);
    else void unbound(() => this.settle(batch));
  }

  private async settle(batch: { item: I; waiter: Waiter<O> }[]): Promise<void> {
    try {
      const results = await this.runMany(batch.map((b) => b.item));
      batch.forEach(({ waiter }, i) => waiter.resolve(results[i]!));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.waiter.reject(error);
      const half = Math.ceil(batch.length / 2);
      await Promise.all([this.settle(batch.slice(0, half)), this.settle(batch.slice(half))]);
    }
  }
}
