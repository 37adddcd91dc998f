import type { Knex } from "knex";
import { PageTokens } from "./page-token.js";

/**
 * lazyPageTokens loads the shared page-token key on the first List call (one
 * statement per process), so createServer stays synchronous; a failed load is
 * retried on the next call.
 */
export function lazyPageTokens(db: Knex): () => Promise<PageTokens> {
  let loading: Promise<PageTokens> | undefined;
  return () => {
    loading ??= PageTokens.load(db).catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
}
