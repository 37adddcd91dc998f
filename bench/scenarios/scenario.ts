import { clearField } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { Sql } from "../peer/queries.js";

/** DataSet is the seeded size: users 1..users, each with postsPerUser posts. */
export interface DataSet {
  users: number;
  postsPerUser: number;
}

/**
 * DirectMethod is a pg limit on another path than the peer's SQL (COPY). It
 * answers with the number of rows it moved, which is all COPY tells: its
 * sample answer is compared with the service's by that count alone.
 */
export type DirectMethod = (sql: Sql, request: any) => Promise<number>;

/**
 * Scenario is one RPC measured on every implementation. Adding one is a small
 * module and a line in ./index.ts; the peer (bench/peer/queries.ts) needs the
 * same method, and the pg limit runs the peer's SQL unless `direct` says
 * otherwise.
 */
export interface Scenario<M extends DescMethod = DescMethod> {
  /** id names the scenario on the command line (--scenario), in JSON and in the chart. */
  id: string;
  title: string;
  method: M;
  /** limit is what the service is compared to besides peer: pg when the database bounds the call, echo when the transport does. */
  limit: "pg" | "echo";
  /** request draws a request at random from the seeded range, so no cache flatters anyone. */
  request(data: DataSet): MessageInitShape<M["input"]>;
  /** sample is the fixed request whose answers must be equal on every implementation. */
  sample(data: DataSet): MessageInitShape<M["input"]>;
  /** normalize clears what legitimately differs between two correct answers (new ids, write times). */
  normalize?(response: MessageShape<M["output"]>): void;
  /** direct replaces the peer's handler as the pg limit when the limit is another path (COPY); it needs rowField. */
  direct?: DirectMethod;
  /** rowField names the answer's repeated field whose entries are rows: set, the report gives rows/s. */
  rowField?: string;
  /** concurrency replaces the default sweep (not an explicit --concurrency) where calls last seconds. */
  concurrency?: number[];
  /** echoRepeat is how many times the echo replays the sample's stream per call, to stream as much as a measured call. */
  echoRepeat?(data: DataSet): number;
}

/** defineScenario keeps a scenario's request and response types checked against its method. */
export function defineScenario<M extends DescMethod>(scenario: Scenario<M>): Scenario {
  return scenario as unknown as Scenario;
}

/** randomId is a uniformly drawn id in 1..max. */
export function randomId(max: number): bigint {
  return BigInt(1 + Math.floor(Math.random() * max));
}

/** clearFields resets the named fields of a message (those the schema has), for normalize. */
export function clearFields(schema: DescMessage, message: object, names: string[]): void {
  for (const field of schema.fields) {
    if (names.includes(field.name)) clearField(message as MessageShape<DescMessage>, field);
  }
}

/** rowCounter counts the rows of one encoded answer message by the tags of rowField, without decoding them. */
export function rowCounter(scenario: Scenario): ((message: Uint8Array) => number) | undefined {
  const field = scenario.method.output.fields.find((f) => f.name === scenario.rowField);
  if (field === undefined) return undefined;
  return (message) => {
    const reader = new BinaryReader(message);
    let rows = 0;
    while (reader.pos < reader.len) {
      const [number, wireType] = reader.tag();
      if (number === field.number) rows++;
      reader.skip(wireType, number);
    }
    return rows;
  };
}
