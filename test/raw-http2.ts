import http2 from "node:http2";

/** RawOutcome is how a hand-made gRPC call ended: its grpc-status and grpc-message. */
export interface RawOutcome {
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
}

/**
 * rawGrpcCall sends one gRPC request over Node's own HTTP/2 client, with
 * headers and message frames as given (grpc-js will not send a malformed
 * grpc-timeout or a compressed flag over bytes that are not gzip), and
 * resolves with the status it ended with. `body` defaults to one empty
 * uncompressed message.
 */
export function rawGrpcCall(
  address: string,
  path: string,
  headers: http2.OutgoingHttpHeaders = {},
  body: Buffer = Buffer.alloc(5),
): Promise<RawOutcome> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on("error", reject);
    const request = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    const outcome: RawOutcome = { grpcStatus: undefined, grpcMessage: undefined };
    const take = (h: http2.IncomingHttpHeaders) => {
      outcome.grpcStatus ??= h["grpc-status"] as string | undefined;
      outcome.grpcMessage ??= h["grpc-message"] as string | undefined;
    };
    request
      .on("response", take)
      .on("trailers", take)
      .on("data", () => {});
    request.on("end", () => {
      session.close();
      resolve(outcome);
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** grpcFrame is one length-prefixed gRPC message, its compressed flag set or not. */
export function grpcFrame(message: Buffer, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(compressed ? 1 : 0, 0);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}
