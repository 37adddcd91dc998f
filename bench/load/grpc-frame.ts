/**
 * grpcFrame puts an encoded message in gRPC's length-prefixed framing (a
 * 0 byte for "not compressed", then the length as 4 bytes big-endian), for
 * the benches that write HTTP/2 bodies themselves instead of through grpc-js.
 */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}
