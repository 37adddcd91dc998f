import { clearField } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { PeerMethod } from "../peer/queries.js";

/** DataSet is the seeded size: users 1..users, each with postsPerUser posts. */
export interface DataSet {
  users: number;
  postsPerUser: number;
}

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
  /** direct replaces the peer's handler as the pg limit when the limit is another path (COPY). */
  direct?: PeerMethod;
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
