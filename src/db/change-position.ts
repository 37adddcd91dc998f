import { InvalidInput } from "../list/invalid-input.js";

/**
 * FeedPosition is a point of the change feed: every change of commits before
 * `seq`, and of commit `seq` up to change `id`, lies behind it. `id` 0 is
 * "before every change of commit seq" (change ids start at 1).
 */
export interface FeedPosition {
  seq: bigint;
  id: bigint;
}

const prefix = "c1.";

/**
 * positionToken is a position as a resume token: opaque to clients (base64url
 * of a versioned text), not sealed, since a forged token can only mislead the
 * watcher who forged it. The same token serves WatchUsers and WatchPosts: the
 * feed is one.
 */
export function positionToken(position: FeedPosition): string {
  return Buffer.from(`${prefix}${position.seq}.${position.id}`).toString("base64url");
}

/** tokenPosition reads a resume token back; empty is undefined (start at the end of the feed). */
export function tokenPosition(token: string): FeedPosition | undefined {
  if (token === "") return undefined;
  const text = Buffer.from(token, "base64url").toString();
  const match = /^c1\.(\d{1,19})\.(\d{1,19})$/.exec(text);
  if (match === null || positionToken({ seq: BigInt(match[1]!), id: BigInt(match[2]!) }) !== token) {
    throw new InvalidInput("INVALID_RESUME_TOKEN", {
      field: "resume_token",
      description:
        "is not a token this service issued; pass a watch_token or resume_token back unchanged, or none to start now",
    });
  }
  return { seq: BigInt(match[1]!), id: BigInt(match[2]!) };
}

/** comparePositions orders two positions of the feed. */
export function comparePositions(a: FeedPosition, b: FeedPosition): number {
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return a.id === b.id ? 0 : a.id < b.id ? -1 : 1;
}
