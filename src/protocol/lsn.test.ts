import assert from "node:assert/strict";
import { it } from "node:test";
import { Metadata } from "@grpc/grpc-js";
import { minLsnKey } from "./keys.js";
import { formatLsn, minLsnOf, parseLsn } from "./lsn.js";

it("reads and writes pg_lsn text, ordering positions as PostgreSQL does", () => {
  assert.equal(parseLsn("0/16B3748"), 0x16b3748n);
  assert.equal(parseLsn("1/0"), 1n << 32n);
  assert.ok(parseLsn("1/0")! > parseLsn("0/FFFFFFFF")!, "the high half counts first");
  assert.equal(formatLsn(parseLsn("AB/16b3748")!), "AB/16B3748");
  assert.equal(formatLsn(0n), "0/0");
  for (const bad of ["", "16B3748", "0/", "/1", "0/123456789", "g/1", " 0/1", undefined, 7, Buffer.from("0/1")]) {
    assert.equal(parseLsn(bad), undefined, String(bad));
  }
});

it("takes the highest well-formed value of the metadata key and ignores the rest", () => {
  const metadata = new Metadata();
  assert.equal(minLsnOf(metadata), undefined);
  metadata.add(minLsnKey, "0/20");
  metadata.add(minLsnKey, "not an lsn");
  metadata.add(minLsnKey, "0/100");
  metadata.add(minLsnKey, "0/30");
  assert.equal(minLsnOf(metadata), 0x100n);
});
