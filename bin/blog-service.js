#!/usr/bin/env node
// The `blog-service` command. In a development checkout (tsx installed, src/
// present) it runs the TypeScript source through tsx's loader, in this
// process, so the command always matches the code being edited and a stale
// dist/ is never run by surprise. In an install without dev dependencies it
// runs the compiled dist/ of `npm run build`.
import { existsSync } from "node:fs";

const root = new URL("../", import.meta.url);
const source = new URL("src/cli/main.ts", root);
const compiled = new URL("dist/src/cli/main.js", root);

function resolves(specifier) {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

if (existsSync(source) && resolves("tsx/esm/api")) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  console.error("blog-service: found neither tsx with src/ nor dist/; run `npm ci` or `npm run build` first");
  process.exitCode = 1;
}
