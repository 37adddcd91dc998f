import type { AsyncLocalStorage } from "node:async_hooks";

/**
 * runWithin runs a handler (or the rest of a middleware chain) with `store`
 * in `storage`. A server stream's body runs later, as the adapter pulls from
 * it and outside this frame, so the store is entered again at every step.
 */
export function runWithin<S, T>(storage: AsyncLocalStorage<S>, store: S, work: () => T): T {
  const result = storage.run(store, work);
  if (result === null || typeof result !== "object" || !(Symbol.asyncIterator in result)) return result;
  const iterator = (result as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => storage.run(store, () => iterator.next()),
      return: (value?: unknown) =>
        storage.run(store, async () => (await iterator.return?.(value)) ?? { done: true, value }),
    }),
  } as T;
}
