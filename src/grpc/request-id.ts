import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { requestIdKey } from "../protocol/keys.js";

// Ids are copied into every log line of the call: accept only short, plain tokens.
const acceptable = /^[\w.:/+=@-]{1,128}$/;

/**
 * requestIdOf is the caller's `x-request-id` when it sent a sensible one, so
 * logs correlate across services; otherwise a fresh UUID.
 */
export function requestIdOf(metadata: Metadata): string {
  const [given] = metadata.get(requestIdKey);
  return typeof given === "string" && acceptable.test(given) ? given : randomUUID();
}
