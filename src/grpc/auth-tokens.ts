import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import type { MetadataValue } from "@grpc/grpc-js";

/** Access is what a token may call: `read` is every method the protos mark NO_SIDE_EFFECTS. */
export type Access = "read" | "read-write";

interface Entry {
  readonly name: string;
  readonly digest: Buffer;
  /** scope describes the grant in messages: `read`, `read-write` or `3 methods`. */
  readonly scope: string;
  /** methods are the full names (`blog.v1.UserService/GetUser`) the token may call. */
  readonly methods: ReadonlySet<string>;
}

/** Verdict is the outcome of checking one call's credentials; messages never contain a token. */
export type Verdict =
  | { readonly code: status.OK; readonly name: string }
  | {
      readonly code: status.UNAUTHENTICATED | status.PERMISSION_DENIED;
      /** reason is the ErrorInfo reason: MISSING_TOKEN, MALFORMED_AUTHORIZATION, INVALID_TOKEN, METHOD_NOT_ALLOWED. */
      readonly reason: string;
      readonly message: string;
      readonly name?: string;
    };

const minTokenLength = 16;
const digest = (token: string) => createHash("sha256").update(token, "utf8").digest();
const fullName = (method: DescMethod) => `${method.parent.typeName}/${method.name}`;

/** isReadOnly reads the method's proto `idempotency_level`, so the read-only list cannot drift from the API. */
export function isReadOnly(method: DescMethod): boolean {
  return method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

/**
 * AuthTokens holds the service-to-service bearer tokens (as SHA-256 digests)
 * with the methods each may call, and decides each call.
 */
export class AuthTokens {
  constructor(private readonly entries: readonly Entry[]) {}

  /** names lists the token names, for the start-up log. */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /**
   * check decides a call to method (`blog.v1.UserService/GetUser`) given its
   * `authorization` metadata values. Every entry's digest is compared, in
   * constant time, whatever matches, so timing says nothing about the tokens.
   */
  check(authorization: MetadataValue[], method: string): Verdict {
    if (authorization.length === 0) {
      return {
        code: status.UNAUTHENTICATED,
        reason: "MISSING_TOKEN",
        message: 'missing credentials: send the metadata "authorization: Bearer <token>"',
      };
    }
    if (authorization.length > 1) {
      return {
        code: status.UNAUTHENTICATED,
        reason: "MALFORMED_AUTHORIZATION",
        message: `send one "authorization" metadata value, not ${authorization.length}`,
      };
    }
    const match = /^Bearer +(\S+) *$/i.exec(String(authorization[0]));
    if (match === null) {
      return {
        code: status.UNAUTHENTICATED,
        reason: "MALFORMED_AUTHORIZATION",
        message: 'the "authorization" metadata must be "Bearer <token>"',
      };
    }
    const presented = digest(match[1]!);
    let found: Entry | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry;
    }
    if (found === undefined) {
      return { code: status.UNAUTHENTICATED, reason: "INVALID_TOKEN", message: "the bearer token is not valid" };
    }
    if (!found.methods.has(method)) {
      return {
        code: status.PERMISSION_DENIED,
        reason: "METHOD_NOT_ALLOWED",
        message: `token "${found.name}" (${found.scope}) may not call ${method}`,
        name: found.name,
      };
    }
    return { code: status.OK, name: found.name };
  }
}

function methodsOf(pattern: unknown, all: readonly DescMethod[], where: string): DescMethod[] {
  const match = typeof pattern === "string" ? /^([\w.]+)\/(\w+|\*)$/.exec(pattern) : null;
  if (match === null)
    throw new Error(`${where}: methods entries look like "blog.v1.UserService/GetUser" or "blog.v1.UserService/*"`);
  const [, service, method] = match;
  const found = all.filter((m) => m.parent.typeName === service && (method === "*" || m.name === method));
  if (found.length === 0) throw new Error(`${where}: "${pattern as string}" names no method of this service`);
  return found;
}

function parseEntry(raw: unknown, index: number, all: readonly DescMethod[]): Entry {
  const where = `tokens[${index}]`;
  if (typeof raw !== "object" || raw === null) throw new Error(`${where}: must be an object`);
  const { name, token, access, methods } = raw as Record<string, unknown>;
  if (typeof name !== "string" || name.trim() === "") throw new Error(`${where}: "name" must be a non-empty string`);
  const named = `${where} ("${name}")`;
  if (typeof token !== "string" || token.length < minTokenLength || /\s/.test(token)) {
    throw new Error(`${named}: "token" must be at least ${minTokenLength} characters without white space`);
  }
  if ((access === undefined) === (methods === undefined)) {
    throw new Error(`${named}: give either "access" ("read" or "read-write") or "methods", not both or neither`);
  }
  let allowed: DescMethod[];
  let scope: string;
  if (access !== undefined) {
    if (access !== "read" && access !== "read-write")
      throw new Error(`${named}: "access" must be "read" or "read-write"`);
    allowed = access === "read" ? all.filter(isReadOnly) : [...all];
    scope = access;
  } else {
    if (!Array.isArray(methods) || methods.length === 0)
      throw new Error(`${named}: "methods" must be a non-empty list`);
    allowed = methods.flatMap((pattern) => methodsOf(pattern, all, named));
    scope = `methods ${methods.join(", ")}`;
  }
  return { name, digest: digest(token), scope, methods: new Set(allowed.map(fullName)) };
}

/**
 * parseAuthTokens reads the AUTH_TOKENS_FILE format (see the README):
 * `{"tokens": [{"name", "token", "access" | "methods"}]}`. Errors name the
 * entry, never its token.
 */
export function parseAuthTokens(text: string, services: readonly DescService[]): AuthTokens {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error, which may be a token.
    throw new Error("is not valid JSON");
  }
  const list = (document as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(list) || list.length === 0) throw new Error('must be {"tokens": [...]} with at least one token');
  const all = services.flatMap((s) => s.methods);
  const entries = list.map((raw, i) => parseEntry(raw, i, all));
  const names = new Set<string>();
  const digests = new Set<string>();
  for (const entry of entries) {
    if (names.has(entry.name)) throw new Error(`two tokens are named "${entry.name}"`);
    if (digests.has(entry.digest.toString("hex"))) throw new Error(`token "${entry.name}" repeats another's token`);
    names.add(entry.name);
    digests.add(entry.digest.toString("hex"));
  }
  return new AuthTokens(entries);
}

/** loadAuthTokens reads and parses AUTH_TOKENS_FILE at start-up; a bad file stops the service. */
export function loadAuthTokens(file: string, services: readonly DescService[]): AuthTokens {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`AUTH_TOKENS_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`, {
      cause: error,
    });
  }
  try {
    return parseAuthTokens(text, services);
  } catch (error) {
    throw new Error(`AUTH_TOKENS_FILE ${file}: ${(error as Error).message}`);
  }
}
