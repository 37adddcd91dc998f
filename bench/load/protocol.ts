import type { Implementation } from "../args.js";
import type { DataSet } from "../scenarios/scenario.js";

/** WorkerSetup is what every load-generator thread starts with. */
export interface WorkerSetup {
  data: DataSet;
  /** databaseUrl and pool are for the in-process `pg` limit. */
  databaseUrl: string;
  pool: number;
}

/** Where one phase's calls go: a gRPC address, or the in-process pg limit. */
export interface TargetRef {
  implementation: Implementation;
  address: string | undefined;
}

/** ToWorker asks a load-generator thread for a phase, a sample answer or to close. */
export type ToWorker =
  | {
      type: "run";
      id: number;
      target: TargetRef;
      scenario: string;
      lanes: number;
      durationMs: number;
      record: boolean;
      /** fixed sends the scenario's sample request on every call. */
      fixed: boolean;
    }
  | { type: "sample"; id: number; target: TargetRef; scenario: string }
  | { type: "close"; id: number };

/** PhaseCounts is what one thread saw during one phase. */
export interface PhaseCounts {
  calls: number;
  /** rows is the rows the successful calls' answers carried (0 where the scenario has no rowField). */
  rows: number;
  errors: number;
  /** errorSample is the first error's code and message. */
  errorSample: string | undefined;
  /** elapsedMs is the lanes' mean busy time: each lane from the start until its last call ended. */
  elapsedMs: number;
}

/** FromWorker answers a ToWorker with the same id. */
export type FromWorker =
  | ({ type: "ran"; id: number; histogram: string | undefined; statements: number } & PhaseCounts)
  | {
      type: "sampled";
      id: number;
      responses: Uint8Array[] | undefined;
      rows: number | undefined;
      error: string | undefined;
    }
  | { type: "closed"; id: number };
