import type { Knex } from "knex";
import { InvalidInput } from "./invalid-input.js";

// An AIP-160 subset. Grammar (AIP-160's precedence: OR binds tighter than AND,
// and terms side by side are ANDed):
//
//   expression := sequence { "AND" sequence }
//   sequence   := factor { factor }
//   factor     := term { "OR" term }
//   term       := [ "NOT" ] simple
//   simple     := "(" expression ")" | field comparator value
//   comparator := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
//   value      := "double-quoted string" | bare word (numbers, true/false)

/** The type of a filterable field decides which literals and operators it takes. */
export type FieldType = "integer" | "text" | "timestamp";

/** FieldSpec maps an API field name to its column; `:` works on text fields. */
export interface FieldSpec {
  column: string;
  type: FieldType;
  min?: bigint;
  max?: bigint;
}

/** int64Range and int32Range bound integer literals to what the column can hold. */
export const int64Range = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
export const int32Range = { min: -(2n ** 31n), max: 2n ** 31n - 1n };

type Comparator = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":";

/** Filter is the syntax tree of a parsed filter, with fields resolved to columns and values typed. */
export type Filter =
  | { kind: "and" | "or"; left: Filter; right: Filter }
  | { kind: "not"; operand: Filter }
  | { kind: "compare"; column: string; op: Comparator; value: bigint | string | Date };

interface Token {
  kind: "(" | ")" | "op" | "string" | "word" | "end";
  text: string;
  position: number;
}

const maxDepth = 32;
const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/i;

function fail(description: string): never {
  throw new InvalidInput("INVALID_FILTER", { field: "filter", description });
}

const at = (t: Token) => (t.kind === "end" ? "at the end" : `at position ${t.position}`);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const position = i + 1;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "(" || c === ")") {
      tokens.push({ kind: c, text: c, position });
      i++;
    } else if (/[<>!=:]/.test(c)) {
      const two = text.slice(i, i + 2);
      const op = ["<=", ">=", "!="].includes(two) ? two : c;
      if (op === "!") fail(`"!" must be followed by "=" at position ${position}`);
      tokens.push({ kind: "op", text: op, position });
      i += op.length;
    } else if (c === '"') {
      let value = "";
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      if (i >= text.length) fail(`unterminated string starting at position ${position}`);
      tokens.push({ kind: "string", text: value, position });
      i++;
    } else if (/[\w.+-]/.test(c)) {
      const word = /^[\w.+-]+/.exec(text.slice(i))![0];
      tokens.push({ kind: "word", text: word, position });
      i += word.length;
    } else {
      fail(`unexpected character ${JSON.stringify(c)} at position ${position}`);
    }
  }
  tokens.push({ kind: "end", text: "", position: text.length + 1 });
  return tokens;
}

function literal(token: Token, field: string, spec: FieldSpec): bigint | string | Date {
  if (token.kind !== "string" && token.kind !== "word") fail(`expected a value for ${field} ${at(token)}`);
  if (spec.type === "text") return token.text;
  if (spec.type === "timestamp") {
    const date = rfc3339.test(token.text) ? new Date(token.text) : undefined;
    if (date === undefined || Number.isNaN(date.getTime())) {
      fail(`${field} takes an RFC 3339 timestamp in double quotes, e.g. "2026-01-31T12:00:00Z", ${at(token)}`);
    }
    return date;
  }
  if (!/^-?\d{1,20}$/.test(token.text)) fail(`${field} takes an integer ${at(token)}`);
  const value = BigInt(token.text);
  if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
    fail(`${field} value ${token.text} is out of range ${at(token)}`);
  }
  return value;
}

/** parseFilter turns filter text into a tree; errors name the offending position (1-based). */
export function parseFilter(text: string, fields: Record<string, FieldSpec>): Filter | undefined {
  const tokens = tokenize(text);
  let next = 0;
  const peek = () => tokens[next]!;
  const take = () => tokens[next++]!;
  const isWord = (word: string) => peek().kind === "word" && peek().text === word;
  const startsTerm = () => ["(", "word", "string"].includes(peek().kind) && !isWord("AND") && !isWord("OR");

  function expression(depth: number): Filter {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth} levels ${at(peek())}`);
    let left = sequence(depth);
    while (isWord("AND")) {
      take();
      left = { kind: "and", left, right: sequence(depth) };
    }
    return left;
  }
  function sequence(depth: number): Filter {
    let left = factor(depth);
    while (startsTerm()) left = { kind: "and", left, right: factor(depth) };
    return left;
  }
  function factor(depth: number): Filter {
    let left = term(depth);
    while (isWord("OR")) {
      take();
      left = { kind: "or", left, right: term(depth) };
    }
    return left;
  }
  function term(depth: number): Filter {
    if (isWord("NOT")) {
      take();
      return { kind: "not", operand: term(depth + 1) };
    }
    return simple(depth);
  }
  function simple(depth: number): Filter {
    const token = take();
    if (token.kind === "(") {
      const inner = expression(depth + 1);
      const close = take();
      if (close.kind !== ")") fail(`expected ")" ${at(close)}`);
      return inner;
    }
    if (token.kind !== "word") fail(`expected a field name ${at(token)}`);
    // Own keys only: "constructor" or "__proto__" must not find Object.prototype's members.
    const spec = Object.hasOwn(fields, token.text) ? fields[token.text] : undefined;
    if (spec === undefined) {
      fail(`unknown field "${token.text}" at position ${token.position}; filter on ${Object.keys(fields).join(", ")}`);
    }
    const op = take();
    if (op.kind !== "op") fail(`expected a comparator (= != < <= > >= :) after ${token.text} ${at(op)}`);
    if (op.text === ":" && spec.type !== "text") fail(`":" applies to text fields only, at position ${op.position}`);
    return {
      kind: "compare",
      column: spec.column,
      op: op.text as Comparator,
      value: literal(take(), token.text, spec),
    };
  }

  if (peek().kind === "end") return undefined;
  const tree = expression(0);
  if (peek().kind !== "end") fail(`unexpected ${JSON.stringify(peek().text)} ${at(peek())}`);
  return tree;
}

const sqlOperators: Record<Exclude<Comparator, ":">, string> = {
  "=": "=",
  "!=": "<>",
  "<": "<",
  "<=": "<=",
  ">": ">",
  ">=": ">=",
};

/** likePattern makes user text a literal ILIKE substring pattern. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** sqlValue passes bigints as strings: pg binds them exactly, and Knex's types refuse bigint. */
export function sqlValue(value: bigint | string | Date): string | Date {
  return typeof value === "bigint" ? String(value) : value;
}

/**
 * applyFilter adds the tree to a query as bound parameters only: column names
 * come from the whitelist, every user value is a binding.
 */
export function applyFilter(query: Knex.QueryBuilder, filter: Filter): void {
  switch (filter.kind) {
    case "and":
      query.where((q) => applyFilter(q, filter.left)).andWhere((q) => applyFilter(q, filter.right));
      return;
    case "or":
      query.where((q) => applyFilter(q, filter.left)).orWhere((q) => applyFilter(q, filter.right));
      return;
    case "not":
      query.whereNot((q) => applyFilter(q, filter.operand));
      return;
    case "compare":
      if (filter.op === ":") query.whereRaw("?? ILIKE ?", [filter.column, likePattern(String(filter.value))]);
      else query.where(filter.column, sqlOperators[filter.op], sqlValue(filter.value));
  }
}
