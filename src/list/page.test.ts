import assert from "node:assert/strict";
import { after, it } from "node:test";
import knexFactory from "knex";
import { pageStatement, rowsOf } from "./page.js";
import { parseListQuery } from "./query.js";
import type { ResourceListing } from "./query.js";

// Statements are only built here, never run: no connection is made.
const db = knexFactory({ client: "pg" });
after(() => db.destroy());

const plain: ResourceListing = {
  resource: "notes",
  fields: { id: { column: "notes.id", property: "id", type: "integer", min: 1n, max: 100n } },
  orderable: ["id"],
};
const texted: ResourceListing = { ...plain, texts: ["notes.body"] };

function page(listing: ResourceListing, limit: number, maxBytes: number) {
  const query = parseListQuery(listing, { filter: "", orderBy: "" });
  return pageStatement(db("notes").select("notes.*"), { listing, query, after: undefined, limit, maxBytes });
}

it("a listing without text columns reads no byte budget, so maxBytes never shortens its pages", () => {
  const statement = page(plain, 2, 1000);
  assert.equal(statement.budget, undefined);
  assert.doesNotMatch(statement.statement.toString(), /running_bytes/);
  const read = [1, 2, 3].map((id) => ({ ord: String(id), id }));
  assert.deepEqual(rowsOf(read, statement), { rows: [{ id: 1 }, { id: 2 }], more: true });
});

it("a listing with text columns keeps the rows within its budget, and at least one", () => {
  const statement = page(texted, 3, 100);
  assert.equal(statement.budget, 100);
  assert.match(statement.statement.toString(), /running_bytes/);
  const read = [
    { ord: "1", id: 1, runningBytes: "150", ownAndFirstBytes: "300" },
    { ord: "2", id: 2, runningBytes: "190", ownAndFirstBytes: "190" },
  ];
  assert.deepEqual(rowsOf(read, statement), { rows: [{ id: 1 }], more: true });
  assert.deepEqual(rowsOf(read.slice(0, 1), statement), { rows: [{ id: 1 }], more: false });
});
