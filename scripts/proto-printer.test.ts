// Round trip for the .proto printer: the printed validate.proto must compile
// with buf to exactly the descriptor embedded in @bufbuild/protovalidate.
// Run with: node --import tsx --test scripts/proto-printer.test.ts
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { clearField, clone, createFileRegistry, createRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { FileDescriptorProto, FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { printProtoFile } from "./proto-printer.js";
import { vendorProtos } from "./vendor-protos.js";

const repoRoot = path.resolve(import.meta.dirname, "..");
const buf = path.join(repoRoot, "node_modules", ".bin", "buf");

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "proto-printer-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Builds the module in `dir` with buf. `--as-file-descriptor-set` drops buf's
 * image metadata, which would otherwise decode as an unknown field on every
 * FileDescriptorProto and spoil the byte comparison.
 */
async function bufBuild(dir: string): Promise<FileDescriptorSet> {
  await writeFile(path.join(dir, "buf.yaml"), "version: v2\n");
  const image = path.join(dir, "image.binpb");
  const args = ["build", dir, "--exclude-source-info", "--as-file-descriptor-set", "-o", image];
  await promisify(execFile)(buf, args, { cwd: repoRoot });
  return fromBinary(FileDescriptorSetSchema, await readFile(image));
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
}

function findFile(set: FileDescriptorSet, name: string): FileDescriptorProto {
  const file = set.file.find((f) => f.name === name);
  assert.ok(file, `${name} is missing from the buf image`);
  return file;
}

function withoutSourceInfo(file: FileDescriptorProto): Uint8Array {
  const copy = clone(FileDescriptorProtoSchema, file);
  clearField(copy, FileDescriptorProtoSchema.field.sourceCodeInfo);
  return toBinary(FileDescriptorProtoSchema, copy);
}

test("printed validate.proto compiles back to the embedded descriptor", async () => {
  const embedded = file_buf_validate_validate.proto;
  const text = printProtoFile(embedded, createRegistry(file_buf_validate_validate));
  assert.match(text, /^syntax = "proto2";$/m);
  assert.match(text, /\(\.buf\.validate\.predefined\) = \{/, "custom options are printed");

  await withTempDir(async (dir) => {
    await writeFiles(dir, { "buf/validate/validate.proto": text });
    const built = findFile(await bufBuild(dir), "buf/validate/validate.proto");

    assert.equal(built.syntax, "", "proto2 leaves the syntax field unset");
    assert.equal(built.messageType.length, 32);
    assert.equal(built.enumType.length, 2);
    assert.deepEqual(
      built.extension.map((e) => `${e.extendee} ${e.name}`),
      [
        ".google.protobuf.MessageOptions message",
        ".google.protobuf.OneofOptions oneof",
        ".google.protobuf.FieldOptions field",
        ".google.protobuf.FieldOptions predefined",
      ],
    );
    assert.deepEqual(withoutSourceInfo(built), withoutSourceInfo(embedded));
  });
});

test("vendored health and google.rpc protos compile with buf", async () => {
  await withTempDir(async (dir) => {
    const outDir = path.join(dir, "proto");
    const written = await vendorProtos(outDir);
    const expected = [
      "buf/validate/validate.proto",
      "grpc/health/v1/health.proto",
      "google/rpc/status.proto",
      "google/rpc/error_details.proto",
    ];
    assert.deepEqual(
      written.map((f) => path.relative(outDir, f).split(path.sep).join("/")),
      expected,
    );

    const set = await bufBuild(outDir);
    for (const name of expected) findFile(set, name);
    assert.deepEqual(
      findFile(set, "grpc/health/v1/health.proto").service.map((s) => s.name),
      ["Health"],
    );
    assert.ok(findFile(set, "google/rpc/error_details.proto").dependency.includes("google/protobuf/duration.proto"));
  });
});

/** Printer features that validate.proto does not use. */
const FIXTURES: Record<string, string> = {
  "demo/dep.proto": `syntax = "proto3";
package demo;
message Dep { string x = 1; }
`,
  "demo/p2.proto": `syntax = "proto2";
package demo.two;
import public "demo/dep.proto";
import "google/protobuf/descriptor.proto";
option optimize_for = CODE_SIZE;
message Outer {
  message Inner { optional int32 a = 1; }
  optional string s = 1 [default = "a\\"b\\\\c\\n\\x01é", json_name = "customS"];
  optional bytes b = 2 [default = "\\000abc\\377"];
  optional float f = 3 [default = -inf];
  optional E e = 4 [default = E_TWO];
  repeated int32 packed_ints = 5 [packed = true, deprecated = true];
  map<string, Inner> by_name = 6;
  optional group Grp = 7 { optional int32 g = 1; }
  message After { optional bool z = 1; }
  oneof choice {
    int32 c1 = 8;
    group InOneof = 9 { optional int32 q = 1; }
  }
  extensions 100 to 199 [verification = UNVERIFIED];
  extensions 1000 to max;
  reserved 20, 22 to 25;
  reserved "old";
  extend Outer { optional int32 nested_ext = 100; }
  enum E {
    option allow_alias = true;
    E_ONE = 1;
    E_TWO = 2 [(tag) = "x"];
    E_DUO = 2;
    reserved 10, 40 to max;
  }
}
extend google.protobuf.EnumValueOptions { optional string tag = 50001; }
extend google.protobuf.MessageOptions { repeated Outer outer = 50002; optional bytes raw = 50003; }
message WithOpts {
  option (outer) = { s: "one" by_name { key: "k" value { a: 3 } } };
  option (outer) = { s: "two" };
  option (raw) = "\\001\\"hi";
}
service Svc {
  rpc Plain(Outer) returns (Outer);
  rpc Streams(stream Outer) returns (stream .demo.Dep) { option idempotency_level = NO_SIDE_EFFECTS; }
}
`,
  "demo/p3.proto": `syntax = "proto3";
package demo.three;
message M {
  optional string maybe = 1;
  oneof pick { int32 a = 2; string b = 3; }
  repeated int32 unpacked = 4 [packed = false];
  map<string, string> labels = 5;
  string weird = 6 [json_name = "WEIRD"];
}
`,
};

test("maps, groups, oneofs, defaults and services round trip", async () => {
  await withTempDir(async (dir) => {
    const [source, printed] = [path.join(dir, "source"), path.join(dir, "printed")];
    await writeFiles(source, FIXTURES);
    const original = await bufBuild(source);
    const registry = createFileRegistry(original);
    const names = Object.keys(FIXTURES);
    await writeFiles(
      printed,
      Object.fromEntries(names.map((n) => [n, printProtoFile(findFile(original, n), registry)])),
    );
    const rebuilt = await bufBuild(printed);
    for (const name of names) {
      assert.deepEqual(withoutSourceInfo(findFile(rebuilt, name)), withoutSourceInfo(findFile(original, name)), name);
    }
  });
});
