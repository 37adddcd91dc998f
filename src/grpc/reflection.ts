import { toBinary } from "@bufbuild/protobuf";
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import type { Server } from "@grpc/grpc-js";

function withDependencies(files: DescFile[], seen = new Map<string, DescFile>()): Map<string, DescFile> {
  for (const file of files) {
    if (seen.has(file.name)) continue;
    seen.set(file.name, file);
    withDependencies(file.dependencies, seen);
  }
  return seen;
}

/**
 * addReflection serves grpc.reflection v1 and v1alpha for the given services.
 * @grpc/reflection expects proto-loader's shape; we hand it the serialized
 * descriptors of the services' files and every transitive import (well-known
 * types, buf/validate), without which grpcurl cannot resolve field types.
 */
export function addReflection(server: Server, services: DescService[]): void {
  const files = withDependencies(services.map((s) => s.file));
  const fileDescriptorProtos = [...files.values()].map((f) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
  );
  const packageDefinition = {
    files: { format: "Protocol Buffer 3 FileDescriptorProto", type: {}, fileDescriptorProtos },
  };
  const reflection = new ReflectionService(packageDefinition as ConstructorParameters<typeof ReflectionService>[0], {
    services: services.map((s) => s.typeName),
  });
  reflection.addToServer(server);
}
