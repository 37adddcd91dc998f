import { readdirSync } from "node:fs";
import path from "node:path";
import { loadSync } from "@grpc/proto-loader";
import type { MethodDefinition, PackageDefinition } from "@grpc/proto-loader";

const root = path.resolve(import.meta.dirname, "../..");

/**
 * loadBlogProtos loads the same .proto files the service is generated from,
 * with the options of the grpc-node examples: snake_case fields, int64 as
 * strings, enums as names, defaults filled in.
 */
export function loadBlogProtos(): PackageDefinition {
  const dir = path.join(root, "proto/blog/v1");
  const files = readdirSync(dir)
    .filter((f) => f.endsWith("_service.proto"))
    .map((f) => `blog/v1/${f}`);
  return loadSync(files, {
    includeDirs: [path.join(root, "proto"), path.join(root, "third_party/proto")],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
}

/** methodByPath finds a method of the loaded protos by its gRPC path, e.g. /blog.v1.UserService/GetUser. */
export function methodByPath(definition: PackageDefinition, grpcPath: string): MethodDefinition<object, object> {
  for (const value of Object.values(definition)) {
    if ("format" in value) continue;
    for (const method of Object.values(value)) {
      if (method.path === grpcPath) return method;
    }
  }
  throw new Error(`no method ${grpcPath} in proto/`);
}
