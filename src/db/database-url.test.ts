import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseHostList } from "./database-url.js";

describe("parseHostList", () => {
  it("leaves a plain single-host URL alone", () => {
    assert.equal(parseHostList("postgres://u:p@db:5432/blog?sslmode=disable"), undefined);
    assert.equal(parseHostList("postgresql://db/blog"), undefined);
  });

  it("reads the URL pg_autoctl show uri prints, one single-host URL per host", () => {
    const list = parseHostList(
      "postgres://u:s%40cret@10.0.0.1:6001,node-2:6002,[::1]/blog?target_session_attrs=read-write&sslmode=require",
    );
    assert.ok(list !== undefined);
    assert.equal(list.writable, true);
    assert.deepEqual(list.hosts, [
      { host: "10.0.0.1", port: 6001 },
      { host: "node-2", port: 6002 },
      { host: "::1", port: 5432 },
    ]);
    assert.deepEqual(list.hosts.map(list.urlFor), [
      "postgres://u:s%40cret@10.0.0.1:6001/blog?sslmode=require",
      "postgres://u:s%40cret@node-2:6002/blog?sslmode=require",
      "postgres://u:s%40cret@[::1]:5432/blog?sslmode=require",
    ]);
  });

  it("takes any answering host without target_session_attrs, and primary as read-write", () => {
    assert.equal(parseHostList("postgres://a:1,b:2/db")?.writable, false);
    assert.equal(parseHostList("postgres://a:1,b:2/db?target_session_attrs=any")?.writable, false);
    const one = parseHostList("postgres://a/db?target_session_attrs=primary");
    assert.equal(one?.writable, true);
    assert.deepEqual(one?.hosts, [{ host: "a", port: 5432 }]);
    assert.equal(one?.urlFor(one.hosts[0]!), "postgres://a:5432/db");
  });

  it("refuses what it cannot honour, without echoing the URL", () => {
    assert.throws(
      () => parseHostList("postgres://u:secret@a:1,b:2/db?target_session_attrs=standby"),
      (e: Error) => /target_session_attrs=standby is not supported/.test(e.message) && !e.message.includes("secret"),
    );
    assert.throws(
      () => parseHostList("postgres://u:secret@a:1,,b:2/db"),
      (e: Error) => e.message === "DATABASE_URL has an empty or malformed host in its host list",
    );
    assert.throws(
      () => parseHostList("postgres://u:secret@a:1,b:99999/db"),
      (e: Error) => e.message === "DATABASE_URL has a port out of range in its host list",
    );
  });
});
