import * as grpc from "@grpc/grpc-js";
import type { ServiceDefinition } from "@grpc/proto-loader";
import pg from "pg";
import { answerOrchestrator } from "../servers/child.js";
import { peerStreams } from "./export.js";
import { loadBlogProtos } from "./protos.js";
import { countingSql, peerMethods } from "./queries.js";
import type { PeerError, PeerMethod } from "./queries.js";

// `peer`: the thinnest hand-written equivalent of the service, written the way
// most grpc-node examples are: @grpc/proto-loader on the same .proto files,
// grpc-js callbacks, a pg.Pool of the same size and hand-written SQL. Started
// by bench/run.ts with DATABASE_URL and DATABASE_POOL_MAX.

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DATABASE_POOL_MAX ?? 10),
  application_name: "bench-peer",
});
const { sql, statements } = countingSql(pool);

function unary(method: PeerMethod): grpc.handleUnaryCall<object, object> {
  return (call, callback) => {
    method(sql, call.request).then(
      (response) => callback(null, response),
      (error: unknown) => {
        if (typeof (error as PeerError).code === "number") return callback(error as PeerError);
        console.error(error);
        callback({ code: grpc.status.INTERNAL, details: "internal error" });
      },
    );
  };
}

const protos = loadBlogProtos();
const server = new grpc.Server();
for (const definition of Object.values(protos)) {
  if ("format" in definition) continue;
  const service = definition as ServiceDefinition;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [methodName, method] of Object.entries(service)) {
    const own = peerMethods[method.path];
    const stream = peerStreams[method.path];
    if (own !== undefined) handlers[methodName] = unary(own);
    else if (stream !== undefined) handlers[methodName] = stream(sql);
  }
  server.addService(service, handlers);
}

const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
answerOrchestrator({
  port,
  statements,
  stop: async () => {
    server.forceShutdown();
    await pool.end();
  },
});
