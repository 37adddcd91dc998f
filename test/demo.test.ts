import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import { startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

const root = path.resolve(import.meta.dirname, "..");
const run = promisify(execFile);

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(() => env.close());

function runDemo(address: string) {
  return run(process.execPath, ["--import", "tsx", "src/demo.ts"], {
    cwd: root,
    env: { ...process.env, GRPC_ADDRESS: address },
  });
}

it("walks through the demo against a running service", async () => {
  const { stdout } = await runDemo(env.address);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 8, stdout);
  assert.match(lines[0]!, /^1\. created user: \{"id":"\d+","name":"Ada Lovelace","age":36\}$/);
  assert.match(lines[2]!, /"posts":\["Notes on the Analytical Engine"\]/);
  assert.match(lines[3]!, /^4\. updated age: \{"age":37\}$/);
  assert.match(lines[4]!, /^5\. user count: \{"count":"1"\}$/);
  assert.match(lines[6]!, /^7\. user \d+ is NOT_FOUND \(user \d+ not found\)$/);
  assert.match(lines[7]!, /^8\. post \d+ is NOT_FOUND \(post \d+ not found\)$/);
  assert.equal((await env.users.countUsers({})).count, 0n, "the demo cleans up after itself");
});

it("tells the user to start the service when nothing listens", async () => {
  await assert.rejects(runDemo("127.0.0.1:1"), (error: { stderr: string }) => {
    assert.match(error.stderr, /no blog-service at 127\.0\.0\.1:1: start it with `npm start` first/);
    return true;
  });
});
