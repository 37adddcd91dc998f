import assert from "node:assert/strict";
import { it } from "node:test";
import { inInputOrder } from "./repository.js";

it("inInputOrder puts each returned row at its own input position, whatever order they came back in", () => {
  const rows = [
    { ord: 3n, title: "c" },
    { ord: 1n, title: "a" },
    { ord: 2n, title: "b" },
  ];
  assert.deepEqual(
    inInputOrder(rows, 3, ({ title }) => ({ title })),
    [{ title: "a" }, { title: "b" }, { title: "c" }],
  );
});

it("inInputOrder refuses a batch whose rows do not match its inputs one to one", () => {
  assert.throws(() => inInputOrder([{ ord: 1n }, { ord: 1n }], 2, String), /unexpected input position 1/);
  assert.throws(() => inInputOrder([{ ord: 1n }], 2, String), /2 rows were inserted but 1 came back/);
  assert.throws(() => inInputOrder([{ ord: 3n }], 1, String), /unexpected input position 3/);
});
