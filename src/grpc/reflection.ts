import { toBinary } from "@bufbuild/protobuf";
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import { status } from "@grpc/grpc-js";
import type { Server, ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";

/** Malformed stands in for a reflection request whose bytes are not a valid message. */
const malformed = Symbol("malformed reflection request");

type Listener = (...args: unknown[]) => void;

/**
 * refusingMalformed makes a reflection service answer bytes that are not a
 * request message with INVALID_ARGUMENT, as the API services do: grpc-js
 * answers a throwing deserializer with INTERNAL, and @grpc/reflection cannot
 * tell. The deserializer marks the message instead of throwing, and the
 * handler's `data` listeners see only well-formed ones; the first malformed
 * one ends the stream.
 */
function refusingMalformed(server: Server): Pick<Server, "addService"> {
  return {
    addService(definition: ServiceDefinition, implementation: UntypedServiceImplementation) {
      const guarded = Object.fromEntries(
        Object.entries(definition).map(([name, method]) => [
          name,
          {
            ...method,
            requestDeserialize: (bytes: Buffer) => {
              try {
                return method.requestDeserialize(bytes);
              } catch {
                return malformed;
              }
            },
          },
        ]),
      );
      const handlers = Object.fromEntries(
        Object.entries(implementation).map(([name, handler]) => [
          name,
          (call: ServerDuplexStream<unknown, unknown>) => {
            (handler as (call: ServerDuplexStream<unknown, unknown>) => void)(call);
            const listeners = call.listeners("data") as Listener[];
            call.removeAllListeners("data");
            let refused = false;
            call.on("data", (message: unknown) => {
              if (refused) return;
              if (message !== malformed) return listeners.forEach((listener) => listener(message));
              refused = true;
              call.emit("error", {
                code: status.INVALID_ARGUMENT,
                details: "the request is not a valid grpc.reflection ServerReflectionRequest message",
              });
            });
          },
        ]),
      );
      server.addService(guarded, handlers);
    },
  };
}

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
  reflection.addToServer(refusingMalformed(server) as Server);
}
