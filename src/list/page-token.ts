import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { InvalidInput } from "./invalid-input.js";

function fail(description: string): never {
  throw new InvalidInput("INVALID_PAGE_TOKEN", { field: "page_token", description });
}

/**
 * PageTokens seals keyset positions into opaque tokens (AES-256-GCM: unreadable
 * and tamper-proof) bound to the query they were issued for. The key lives in
 * PostgreSQL so every replica accepts every other replica's tokens.
 */
export class PageTokens {
  private constructor(private readonly key: Buffer) {}

  /** load reads the shared key, creating it on first use by any replica. */
  static async load(db: Knex): Promise<PageTokens> {
    await db.raw("INSERT INTO service_keys (name, value) VALUES ('page_token', ?) ON CONFLICT (name) DO NOTHING", [
      randomBytes(32),
    ]);
    const { rows } = await db.raw<{ rows: { value: Buffer }[] }>(
      "SELECT value FROM service_keys WHERE name = 'page_token'",
    );
    return new PageTokens(rows[0]!.value);
  }

  /** seal makes a token for the position after `after`, valid only for `scope`. */
  seal(scope: string, after: string[]): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify([scopeHash(scope), after])), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  }

  /** open returns the position a token holds, or fails with INVALID_ARGUMENT. */
  open(token: string, scope: string): string[] {
    const raw = Buffer.from(token, "base64url");
    let content: unknown;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      content = JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString());
    } catch {
      fail("is not a token this service issued; pass next_page_token back unchanged");
    }
    const [hash, after] = content as [string, string[]];
    if (hash !== scopeHash(scope)) {
      fail("was issued for another filter, order_by or parent; restart the listing without a token");
    }
    return after;
  }
}

function scopeHash(scope: string): string {
  return createHash("sha256").update(scope).digest("base64url").slice(0, 16);
}
