import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, copyFile, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import { startTestEnv } from "./helpers.js";
import type { TestEnv } from "./helpers.js";

// The client SDK as a user of the package meets it: `npm run build`'s output
// (here into a scratch copy of the package, so parallel builds never share a
// dist/), imported by name through package.json `exports`, with the README's
// example type-checked against the emitted declarations and run as written.
const root = path.resolve(import.meta.dirname, "..");
const run = promisify(execFile);
const tsc = path.join(root, "node_modules/.bin/tsc");

/** readmeExample is the code block between the client-example markers of README.md. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(path.join(root, "README.md"), "utf8");
  const block = /<!-- client-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- client-example:end -->/.exec(readme);
  assert.ok(block, "README.md has a ts block between <!-- client-example:start --> and <!-- client-example:end -->");
  return block[1]!;
}

let env: TestEnv;
let pkg: string;
before(async () => {
  pkg = await mkdtemp(path.join(os.tmpdir(), "blog-service-package-"));
  await copyFile(path.join(root, "package.json"), path.join(pkg, "package.json"));
  await symlink(path.join(root, "node_modules"), path.join(pkg, "node_modules"));
  await run(tsc, ["-p", "tsconfig.build.json", "--outDir", path.join(pkg, "dist")], { cwd: root });
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
  if (pkg) await rm(pkg, { recursive: true, force: true });
});

it("package.json exports blog-service/client with its type declarations", async () => {
  const { name, exports } = JSON.parse(await readFile(path.join(pkg, "package.json"), "utf8"));
  assert.equal(name, "blog-service");
  const entry = exports["./client"];
  await access(path.join(pkg, entry.types));
  await access(path.join(pkg, entry.default));
  const script = `const c = await import("blog-service/client"); console.log(typeof c.createBlogClient, typeof c.BlogClientError);`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: pkg });
  assert.equal(stdout.trim(), "function function");
});

it("the README's client example type-checks against the package and runs as written", async () => {
  const example = await readmeExample();
  const target = '"dns:///localhost:50051"';
  assert.equal(example.split(target).length, 2, `the example connects to ${target}`);
  const file = path.join(pkg, "readme-example.ts");
  await writeFile(file, example.replace(target, `"dns:///localhost:${env.address.split(":")[1]}"`));
  await run(
    tsc,
    [
      "--noEmit",
      "--strict",
      "--target",
      "ES2022",
      "--module",
      "NodeNext",
      "--moduleResolution",
      "NodeNext",
      "--types",
      "node",
      "--skipLibCheck",
      file,
    ],
    { cwd: pkg },
  ).catch((error: { stdout: string }) => assert.fail(`tsc rejects the README example:\n${error.stdout}`));
  const { stdout } = await run(process.execPath, ["--import", "tsx", file], { cwd: pkg });
  assert.equal(stdout, "Ada has 0 posts\n");
  assert.equal((await env.users.countUsers({})).count, 1n, "the example created its user in the test server");
});
