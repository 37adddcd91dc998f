import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseFilter } from "./filter.js";
import type { FieldSpec } from "./filter.js";
import { InvalidInput } from "./invalid-input.js";

const fields: Record<string, FieldSpec> = {
  id: { column: "t.id", type: "integer", min: 1n, max: 100n },
  name: { column: "t.name", type: "text" },
  create_time: { column: "t.create_time", type: "timestamp" },
};

function show(text: string): string {
  const print = (f: ReturnType<typeof parseFilter>): string => {
    if (f === undefined) return "";
    if (f.kind === "not") return `NOT(${print(f.operand)})`;
    if (f.kind === "compare") {
      const value = f.value instanceof Date ? f.value.toISOString() : String(f.value);
      return `${f.column}${f.op}${value}`;
    }
    return `${f.kind.toUpperCase()}(${print(f.left)}, ${print(f.right)})`;
  };
  return print(parseFilter(text, fields));
}

function rejects(text: string, message: RegExp) {
  assert.throws(
    () => parseFilter(text, fields),
    (error: unknown) => {
      assert.ok(error instanceof InvalidInput);
      assert.equal(error.reason, "INVALID_FILTER");
      assert.equal(error.violation.field, "filter");
      assert.match(error.message, message);
      return true;
    },
  );
}

describe("parseFilter", () => {
  it("parses comparisons with typed values", () => {
    assert.equal(show('name = "Ada"'), "t.name=Ada");
    assert.equal(show("id >= 5"), "t.id>=5");
    assert.equal(show('create_time < "2026-01-02T03:04:05.678Z"'), "t.create_time<2026-01-02T03:04:05.678Z");
    assert.equal(show('name:"da"'), "t.name:da");
    assert.equal(show("name = bare"), "t.name=bare");
    assert.equal(show(""), "");
  });

  it("follows AIP-160 precedence: OR binds tighter than AND, juxtaposition is AND", () => {
    assert.equal(show("id = 1 AND id = 2 OR id = 3"), "AND(t.id=1, OR(t.id=2, t.id=3))");
    assert.equal(show("(id = 1 AND id = 2) OR id = 3"), "OR(AND(t.id=1, t.id=2), t.id=3)");
    assert.equal(show('id = 1 name = "x"'), "AND(t.id=1, t.name=x)");
    assert.equal(show("NOT id = 1"), "NOT(t.id=1)");
  });

  it("unescapes strings and keeps SQL text as a literal", () => {
    assert.equal(show('name = "a \\"quoted\\" word"'), 't.name=a "quoted" word');
    assert.equal(show(`name = "x'; DROP TABLE users; --"`), "t.name=x'; DROP TABLE users; --");
  });

  it("points at the offending position", () => {
    rejects("id = ", /^filter: expected a value for id at the end$/);
    rejects("id = 1)", /unexpected "\)" at position 7/);
    rejects("(id = 1", /expected "\)" at the end/);
    rejects("email = 1", /unknown field "email" at position 1; filter on id, name, create_time/);
    rejects("id ~ 1", /unexpected character "~" at position 4/);
    rejects('name = "open', /unterminated string starting at position 8/);
    rejects("id : 1", /":" applies to text fields only, at position 4/);
    rejects("id = abc", /id takes an integer at position 6/);
    rejects("id = 101", /out of range/);
    rejects('create_time > "yesterday"', /RFC 3339 timestamp/);
    rejects("id = 1 AND", /expected a field name at the end/);
    rejects("; DELETE FROM users", /unexpected character ";" at position 1/);
  });

  it("bounds nesting depth", () => {
    rejects(`${"(".repeat(40)}id = 1${")".repeat(40)}`, /nesting deeper than 32 levels/);
  });
});
