import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import QueryStream from "pg-query-stream";
import { post, postColumns } from "./queries.js";
import type { PostRow, Sql } from "./queries.js";

/** batchSize is how many posts a message carries, as the service's exportBatchSize. */
const batchSize = 500;

interface ExportRequest {
  user_id: string;
  filter: string;
}

/** PeerStream answers one server-streaming call, the way grpc-node examples do: call.write, then call.end. */
export type PeerStream = (sql: Sql) => grpc.handleServerStreamingCall<any, object>;

/**
 * exportPosts streams the posts a request selects (the scenario's one filter
 * shape, `id <= N`) from a pg-query-stream cursor, a call.write per 500 rows;
 * when write asks to wait it waits for 'drain', so a slow reader holds the
 * cursor back. A cancelled call stops reading and discards its client.
 */
const exportPosts: PeerStream = (sql) => (call: grpc.ServerWritableStream<ExportRequest, object>) => {
  const cancelled = new AbortController();
  call.on("cancelled", () => cancelled.abort());
  const max = /^id <= (\d+)$/.exec(call.request.filter)?.[1];
  if (max === undefined && call.request.filter !== "") {
    call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: "the peer takes no filter but id <= N" });
    return;
  }
  const text = `SELECT ${postColumns} FROM posts WHERE ($1::bigint = 0 OR user_id = $1) AND ($2::bigint IS NULL OR id <= $2)
    ORDER BY id`;
  sql
    .streaming(async (client) => {
      const rows = client.query(new QueryStream(text, [call.request.user_id, max ?? null], { batchSize }));
      let batch: ReturnType<typeof post>[] = [];
      for await (const row of rows as AsyncIterable<PostRow>) {
        batch.push(post(row));
        if (batch.length === batchSize) {
          if (!call.write({ posts: batch })) await once(call, "drain", { signal: cancelled.signal });
          batch = [];
        }
      }
      if (batch.length > 0) call.write({ posts: batch });
    })
    .then(
      () => call.end(),
      (error: unknown) => {
        if (cancelled.signal.aborted) return;
        console.error(error);
        call.emit("error", { code: grpc.status.INTERNAL, details: "internal error" });
      },
    );
};

/** peerStreams maps a gRPC path to its hand-written server-streaming handler. */
export const peerStreams: Record<string, PeerStream> = {
  "/blog.v1.PostService/ExportPosts": exportPosts,
};
