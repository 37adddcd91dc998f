import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { Client, Metadata, credentials, status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { ExportPostsRequestSchema } from "../../gen/blog/v1/post_service_pb.js";
import { UserView } from "../../gen/blog/v1/user_pb.js";
import { BatchGetUsersRequestSchema } from "../../gen/blog/v1/user_service_pb.js";
import { grpcFrame } from "./grpc-frame.js";

// The hostile half of `npm run bench:hostile`: clients that hold exports
// without reading, and clients that ask for replies as large as the send
// limit allows (and larger).

const encode = <S extends DescMessage>(schema: S, init: MessageInitShape<S>) =>
  Buffer.from(toBinary(schema, create(schema, init)));

/** StalledExport is one ExportPosts its client never reads, as it stands. */
export interface StalledExport {
  /** headers is true once the server answered with headers: it has written the first message (grpc-js sends them with it). */
  headers: boolean;
  /** dataBytes counts message bytes received: 0 while the stall holds. */
  dataBytes: number;
  /** ended is why the stream ended (a status or an error), if it has. */
  ended: string | undefined;
  close(): void;
}

/**
 * stallExport opens ExportPosts on an HTTP/2 connection of its own whose
 * SETTINGS give the server a stream window of 0: the server can send its
 * headers but not one byte of a message, so the export waits on flow control
 * for as long as the connection stays open (or until the server's idle-write
 * timeout ends it). grpc-js cannot be made to do this; Node's http2 can.
 */
export function stallExport(address: string, filter: string): StalledExport {
  const session = http2.connect(`http://${address}`, { settings: { initialWindowSize: 0 } });
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": "/blog.v1.PostService/ExportPosts",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.end(grpcFrame(encode(ExportPostsRequestSchema, { filter })));
  const state: StalledExport = { headers: false, dataBytes: 0, ended: undefined, close: () => session.destroy() };
  stream.on("response", () => (state.headers = true));
  stream.on("data", (chunk: Buffer) => (state.dataBytes += chunk.length));
  stream.on("trailers", (trailers) => (state.ended ??= `grpc-status ${String(trailers["grpc-status"])}`));
  stream.on("error", (error) => (state.ended ??= error.message));
  stream.on("close", () => (state.ended ??= "closed"));
  return state;
}

/** BatchCounts are the answers one batch loop got, by kind. */
export interface BatchCounts {
  ok: number;
  tooLarge: number;
  /** unexpected are answers of another status, or of the wrong kind for the request. */
  unexpected: string[];
}

/**
 * batchLoop calls BatchGetUsers view FULL back to back until stopped: three
 * requests whose reply fits the send limit (`fits` ids) after each one whose
 * reply would not (`over` ids, refused with RESOURCE_EXHAUSTED
 * before it is built). Answers are not decoded: the client's cost stays small.
 */
export async function batchLoop(
  address: string,
  fits: () => bigint[],
  over: () => bigint[],
  stopped: () => boolean,
): Promise<BatchCounts> {
  const client = new Client(address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc.use_local_subchannel_pool": 1,
  });
  const counts: BatchCounts = { ok: 0, tooLarge: 0, unexpected: [] };
  const call = (ids: bigint[]) =>
    new Promise<ServiceError | null>((resolve) => {
      const request = encode(BatchGetUsersRequestSchema, { ids, view: UserView.FULL });
      const identity = (bytes: Buffer) => bytes;
      client.makeUnaryRequest(
        "/blog.v1.UserService/BatchGetUsers",
        identity,
        identity,
        request,
        new Metadata(),
        { deadline: Date.now() + 60_000 },
        (error) => resolve(error),
      );
    });
  try {
    for (let i = 0; !stopped(); i++) {
      const oversized = i % 4 === 0;
      const error = await call(oversized ? over() : fits());
      if (!oversized && error === null) counts.ok++;
      else if (oversized && error?.code === status.RESOURCE_EXHAUSTED && /^the reply would take/.test(error.details)) {
        counts.tooLarge++;
      } else {
        const got = error === null ? "OK" : `${status[error.code]}: ${error.details}`;
        counts.unexpected.push(`${oversized ? "oversized" : "fitting"} batch answered ${got}`);
      }
    }
  } finally {
    client.close();
  }
  return counts;
}

/** Hostile is a hostile load while it runs. */
export interface Hostile {
  exports: StalledExport[];
  /** stop ends the batch loops (after their calls in flight) and closes the stalled exports. */
  stop(): Promise<BatchCounts[]>;
}

/** batchUsers is how many of the large users one BatchGetUsers of a loop asks for: a reply that fits, and one that does not. */
export const batchUsers = { fitting: 10, oversized: 16 };

/**
 * startHostile opens `exports` stalled exports of the posts from id
 * firstPost and starts `batches` batch loops over largeIds (batchUsers users
 * a call), and resolves once every export has stalled (or ended).
 */
export async function startHostile(
  address: string,
  counts: { exports: number; batches: number },
  largeIds: bigint[],
  firstPost: bigint,
): Promise<Hostile> {
  const pick = (n: number) => [...largeIds].sort(() => Math.random() - 0.5).slice(0, n);
  const exports = Array.from({ length: counts.exports }, () => stallExport(address, `id >= ${firstPost}`));
  let stopped = false;
  const loops = Array.from({ length: counts.batches }, () =>
    batchLoop(
      address,
      () => pick(batchUsers.fitting),
      () => pick(batchUsers.oversized),
      () => stopped,
    ),
  );
  const deadline = Date.now() + 30_000;
  while (!exports.every((e) => e.headers || e.ended !== undefined) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    exports,
    stop: async () => {
      stopped = true;
      const answered = await Promise.all(loops);
      for (const e of exports) e.close();
      return answered;
    },
  };
}
