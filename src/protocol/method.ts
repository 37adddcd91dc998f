import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageInitShape } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** Init is what a message may be built from: a message or a plain object of its fields. */
export type Init<M extends DescMessage> = MessageInitShape<M>;

/**
 * encode serializes a message (or the init shape of one) of schema to
 * protobuf binary, as a Buffer over the encoded bytes (not a copy of them).
 */
export function encode(schema: DescMessage, value: unknown): Buffer {
  const bytes = toBinary(schema, create(schema, value as Init<DescMessage>));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * methodDefinition is the grpc-js view of one method of a protobuf-es
 * service descriptor: its path `/${service.typeName}/${method.name}` and
 * protobuf binary (de)serializers. Server and client both start from it.
 */
export function methodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (value) => encode(method.input, value),
    requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
    responseSerialize: (value) => encode(method.output, value),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

/** serviceMethods is methodDefinition for each method of a service, by local name (grpc-js's ServiceDefinition). */
export function serviceMethods(service: DescService): ServiceDefinition {
  return Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(m)]));
}
