import { AsyncLocalStorage } from "node:async_hooks";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import * as grpc from "@grpc/grpc-js";
import knexFactory from "knex";
import pg from "pg";
import { Counter, Histogram, Registry } from "prom-client";
import { GetUserRequestSchema, GetUserResponseSchema } from "../../gen/blog/v1/user_service_pb.js";
import { createLogger } from "../../src/log.js";
import { userToProto } from "../../src/users/mapper.js";
import { usersByIdSql } from "../../src/users/repository.js";
import type { UserRow } from "../../src/users/model.js";
import { answerOrchestrator } from "../servers/child.js";
import { floorFeatures } from "./features.js";

// `floor` (npm run bench:floor): GetUser BASIC on the stack the design fixes
// (grpc-js, protobuf-es, Knex's knex.raw on pg, the service's own row mapper)
// and nothing else, then with each feature the service must keep, in its
// cheapest form, switched on by FLOOR_FEATURES (comma-separated):
//   validate  one protovalidate check of the request
//   signal    one AbortController per call, as the call's cancel signal, listened to while the statement runs
//   metrics   one histogram observation and one counter increment, three labels
//   log       one JSON line per call through the service's buffered logger
//   scope     the call's work inside one AsyncLocalStorage.run
// Nothing here is the service's code path: it measures what the fixed parts
// and the required features cost at the least, so the service's figures can
// be read against a floor. FLOOR_QUERY=pg runs the statement on a pg.Pool
// instead of Knex, for attribution only. Started by bench/floor.ts with DATABASE_URL and
// DATABASE_POOL_MAX; stdout (the log) goes to a file.

const on = new Set((process.env.FLOOR_FEATURES ?? "").split(",").filter(Boolean));
for (const feature of on) {
  if (!(floorFeatures as readonly string[]).includes(feature))
    throw new Error(`unknown FLOOR_FEATURES entry ${feature}`);
}

pg.types.setTypeParser(pg.types.builtins.INT8, BigInt);
const db = knexFactory({
  client: "pg",
  connection: process.env.DATABASE_URL,
  pool: { min: 0, max: Number(process.env.DATABASE_POOL_MAX ?? 10) },
});
// FLOOR_QUERY=pg sends the statement on a pg.Pool instead of Knex: not the fixed stack (the design puts
// Knex between the service and pg), shown only to tell Knex's share of the floor from protobuf-es's.
const pool =
  process.env.FLOOR_QUERY === "pg"
    ? new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DATABASE_POOL_MAX ?? 10) })
    : undefined;
let statements = 0;
db.on("query", () => statements++);
const select = (sql: string, ids: string[]): Promise<{ rows: UserRow[] }> => {
  if (pool === undefined) return db.raw(sql, [ids]);
  statements++;
  return pool.query<UserRow>(sql.replace("?", "$1"), [ids]);
};
const validator = createValidator();
const log = createLogger("info", { flushMs: 200 });
const registry = new Registry();
const labelNames = ["service", "method", "code"] as const;
const seconds = new Histogram({ name: "calls_seconds", help: "calls", labelNames, registers: [registry] });
const calls = new Counter({ name: "calls_total", help: "calls", labelNames, registers: [registry] });
const cancelled = Object.assign(new Error("cancelled by the client"), { code: grpc.status.CANCELLED });
const scope = new AsyncLocalStorage<{ signal: AbortSignal | undefined }>();

async function getUser(bytes: Buffer, passed: AbortSignal | undefined): Promise<Buffer> {
  // With the scope on, the statement's side finds the signal there, as the service's database layer does.
  const signal = on.has("scope") ? scope.getStore()?.signal : passed;
  const request = fromBinary(GetUserRequestSchema, bytes);
  if (on.has("validate") && validator.validate(GetUserRequestSchema, request).kind !== "valid") {
    throw Object.assign(new Error("invalid request"), { code: grpc.status.INVALID_ARGUMENT });
  }
  // A cancel must reach the statement (the service sends PostgreSQL a CancelRequest): listen while it runs.
  const cancelStatement = () => {};
  signal?.addEventListener("abort", cancelStatement);
  const { rows } = await select(usersByIdSql, [String(request.id)]).finally(() =>
    signal?.removeEventListener("abort", cancelStatement),
  );
  if (signal?.aborted) throw Object.assign(new Error("cancelled"), { code: grpc.status.CANCELLED });
  const user = rows[0];
  if (user === undefined) throw Object.assign(new Error("no such user"), { code: grpc.status.NOT_FOUND });
  return Buffer.from(
    toBinary(GetUserResponseSchema, { $typeName: "blog.v1.GetUserResponse", user: userToProto(user) }),
  );
}

const server = new grpc.Server();
server.register<Buffer, Buffer>(
  "/blog.v1.UserService/GetUser",
  (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
    const started = process.hrtime.bigint();
    const controller = on.has("signal") ? new AbortController() : undefined;
    let settled = false;
    // grpc-js also emits "cancelled" when a finished call's stream closes: only a call still running aborts,
    // with a reason made once (a DOMException per call, abort()'s default, costs tens of µs).
    if (controller !== undefined) call.once("cancelled", () => settled || controller.abort(cancelled));
    const finish = (code: grpc.status) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const labels = { service: "blog.v1.UserService", method: "GetUser", code: grpc.status[code] };
      if (on.has("metrics")) {
        seconds.observe(labels, ms / 1000);
        calls.inc(labels);
      }
      if (on.has("log")) log.info({ ...labels, ms, peer: call.getPeer() }, "call");
    };
    const run = () =>
      getUser(call.request, controller?.signal).then(
        (reply) => {
          settled = true;
          callback(null, reply);
          finish(grpc.status.OK);
        },
        (error: Error & { code?: grpc.status }) => {
          settled = true;
          const code = error.code ?? grpc.status.INTERNAL;
          callback({ code, details: error.message });
          finish(code);
        },
      );
    if (on.has("scope")) void scope.run({ signal: controller?.signal }, run);
    else void run();
  },
  (reply: Buffer) => reply,
  (bytes: Buffer) => bytes,
  "unary",
);
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
answerOrchestrator({
  port,
  statements: () => statements,
  stop: async () => {
    server.forceShutdown();
    log.flush();
    await db.destroy();
    await pool?.end();
  },
});
