import type { DescMethod } from "@bufbuild/protobuf";
import { Client, Metadata, credentials, status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import pg from "pg";
import { loadBlogProtos, methodByPath } from "../peer/protos.js";
import { countingSql, peerMethods } from "../peer/queries.js";
import type { PeerError } from "../peer/queries.js";
import { rowCounter } from "../scenarios/scenario.js";
import type { Scenario } from "../scenarios/scenario.js";

/**
 * Done receives a call's outcome; responses are kept only when asked for
 * (samples); rows is how many rows the answer carried, for scenarios with a
 * rowField (a direct pg limit's answer is that count and nothing else).
 */
export type Done = (error: string | undefined, responses: Buffer[], rows?: number) => void;

/** Target is one implementation as the load generator calls it, with encoded requests and answers. */
export interface Target {
  call(scenario: Scenario, request: Buffer, keep: boolean, done: Done): void;
  /** statements counts SQL sent by this thread (only the in-process pg limit knows). */
  statements(): number;
  close(): Promise<void>;
}

const identity = (bytes: Buffer) => bytes;
const grpcPath = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/**
 * grpcTarget calls a server over one grpc-js channel without decoding the
 * answers (rows are counted from their tags), so every implementation pays
 * the same client cost.
 */
export function grpcTarget(address: string): Target {
  const client = new Client(address, credentials.createInsecure(), { "grpc.max_receive_message_length": -1 });
  const failure = (e: ServiceError) => `${status[e.code] ?? e.code}: ${e.details}`;
  const counters = new Map<Scenario, ReturnType<typeof rowCounter>>();
  return {
    call(scenario, request, keep, done) {
      const path = grpcPath(scenario.method);
      if (!counters.has(scenario)) counters.set(scenario, rowCounter(scenario));
      const count = counters.get(scenario);
      if (scenario.method.methodKind === "server_streaming") {
        const responses: Buffer[] = [];
        let rows = 0;
        const stream = client.makeServerStreamRequest(path, identity, identity, request, new Metadata(), {});
        stream.on("data", (chunk: Buffer) => {
          if (count) rows += count(chunk);
          if (keep) responses.push(chunk);
        });
        stream.on("error", (e: ServiceError) => done(failure(e), []));
        stream.on("end", () => done(undefined, responses, count && rows));
        return;
      }
      try {
        client.makeUnaryRequest(path, identity, identity, request, new Metadata(), {}, (e, response) =>
          e ? done(failure(e), []) : done(undefined, keep && response ? [response] : [], response && count?.(response)),
        );
      } catch (error) {
        // A closed channel throws at once; answer later, like a failed call, not re-entrantly.
        setImmediate(() => done(String(error), []));
      }
    },
    statements: () => 0,
    close: async () => client.close(),
  };
}

/**
 * pgTarget is the `pg` limit: the peer's own SQL (or the scenario's direct
 * path, whose answer is a row count) on a pg.Pool of the same size, in this
 * thread, with no gRPC. Requests are decoded with the peer's proto-loader
 * types; answers are encoded only for samples.
 */
export function pgTarget(databaseUrl: string, max: number): Target {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, application_name: "bench-pg" });
  const { sql, statements } = countingSql(pool);
  const protos = loadBlogProtos();
  const methods = new Map<string, ReturnType<typeof methodByPath>>();
  const method = (path: string) => methods.get(path) ?? methods.set(path, methodByPath(protos, path)).get(path)!;
  return {
    call(scenario, request, keep, done) {
      const path = grpcPath(scenario.method);
      const types = method(path);
      const fail = (error: unknown) => {
        const known = error as Partial<PeerError>;
        done(typeof known.code === "number" ? `${status[known.code]}: ${known.details}` : String(error), []);
      };
      if (scenario.direct !== undefined) {
        scenario.direct(sql, types.requestDeserialize(request)).then((rows) => done(undefined, [], rows), fail);
        return;
      }
      const run = peerMethods[path];
      if (run === undefined) return done(`the peer has no ${path}`, []);
      run(sql, types.requestDeserialize(request)).then((response) => {
        const rows = scenario.rowField && (response as Record<string, unknown[] | undefined>)[scenario.rowField];
        done(undefined, keep ? [types.responseSerialize(response)] : [], rows ? rows.length : undefined);
      }, fail);
    },
    statements,
    close: () => pool.end(),
  };
}
