// Vendors the third-party .proto files our schemas import into the git-ignored
// third_party/proto/, taken from installed npm packages so they always match
// the runtime code. Runs as `prepare` and as the first step of `npm run generate`.
import { existsSync, realpathSync } from "node:fs";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createRegistry } from "@bufbuild/protobuf";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { printProtoFile } from "./proto-printer.js";

const require = createRequire(import.meta.url);

/** Files copied verbatim: package, path inside it, path below the output dir. */
const COPIES = [
  ["grpc-health-check", "proto/health/v1/health.proto", "grpc/health/v1/health.proto"],
  ["google-proto-files", "google/rpc/status.proto", "google/rpc/status.proto"],
  ["google-proto-files", "google/rpc/error_details.proto", "google/rpc/error_details.proto"],
] as const;

/**
 * Finds an installed package's directory the way Node resolves it, without
 * requiring "./package.json" to be listed in the package's exports.
 */
function packageDir(name: string): string {
  const candidates = (require.resolve.paths(name) ?? []).map((dir) => path.join(dir, name));
  const found = candidates.find((dir) => existsSync(path.join(dir, "package.json")));
  if (found === undefined) throw new Error(`package ${name} is not installed`);
  return found;
}

async function packageVersion(name: string): Promise<string> {
  const json = JSON.parse(await readFile(path.join(packageDir(name), "package.json"), "utf8")) as { version: string };
  return json.version;
}

/** Returns `outDir/relPath`, creating its parent directories. */
async function prepareTarget(outDir: string, relPath: string): Promise<string> {
  const target = path.join(outDir, relPath);
  await mkdir(path.dirname(target), { recursive: true });
  return target;
}

/**
 * buf/validate/validate.proto is printed from the descriptor embedded in
 * @bufbuild/protovalidate (the package does not ship the .proto source). The
 * file's own registry lets the printer keep its `(predefined)` custom options.
 */
async function writeValidateProto(outDir: string): Promise<string> {
  const version = await packageVersion("@bufbuild/protovalidate");
  const header = `// Generated from the descriptor of @bufbuild/protovalidate ${version} by scripts/vendor-protos.ts. DO NOT EDIT.\n\n`;
  const body = printProtoFile(file_buf_validate_validate.proto, createRegistry(file_buf_validate_validate));
  const target = await prepareTarget(outDir, "buf/validate/validate.proto");
  await writeFile(target, header + body);
  return target;
}

/**
 * Recreates `outDir` (removing stale files first) with all vendored protos and
 * returns the paths written. Exported so tests can vendor into a temp dir.
 */
export async function vendorProtos(outDir: string): Promise<string[]> {
  await rm(outDir, { recursive: true, force: true });
  const written = [await writeValidateProto(outDir)];
  for (const [pkg, from, to] of COPIES) {
    const target = await prepareTarget(outDir, to);
    await copyFile(path.join(packageDir(pkg), from), target);
    written.push(target);
  }
  return written;
}

// Vendor into third_party/proto only when run as a script, not when imported.
// realpath because import.meta.url is resolved through symlinks, argv[1] is not.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const outDir = path.resolve(import.meta.dirname, "..", "third_party", "proto");
  for (const file of await vendorProtos(outDir)) {
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
