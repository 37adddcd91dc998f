import { create, toBinary } from "@bufbuild/protobuf";
import type { Histogram } from "hdr-histogram-js";
import type { DataSet, Scenario } from "../scenarios/scenario.js";
import type { PhaseCounts } from "./protocol.js";
import type { Target } from "./target.js";

/** encodeRequest draws a random request of the scenario and encodes it once. */
export function encodeRequest(scenario: Scenario, data: DataSet, sample = false): Buffer {
  const init = sample ? scenario.sample(data) : scenario.request(data);
  const bytes = toBinary(scenario.method.input, create(scenario.method.input, init));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Phase is how one phase loads a target: calls in flight, for how long, and whether one request is sent every time. */
export interface Phase {
  lanes: number;
  durationMs: number;
  /** fixed sends the scenario's sample request, encoded once, on every call; else each call draws its own. */
  fixed: boolean;
}

/**
 * drive keeps `lanes` calls in flight until durationMs has passed (a closed
 * loop: each lane starts its next call when the previous one ends), then waits
 * for the calls still running. Successful latencies go to histogram, in
 * microseconds. stopped ends the phase early (the run is being torn down).
 *
 * Only whole calls count, each when it ends, so a call that outlasts the phase
 * extends it, and every lane makes at least one call however short the phase.
 * Time is each lane's own, from the start until its last call ended, averaged
 * over the lanes: a lane that stopped early is not charged for the others'
 * tail, which matters when calls last seconds (ExportPosts).
 */
export function drive(
  target: Target,
  scenario: Scenario,
  data: DataSet,
  { lanes, durationMs, fixed }: Phase,
  histogram: Histogram | undefined,
  stopped: () => boolean,
): Promise<PhaseCounts> {
  return new Promise((resolve) => {
    const started = performance.now();
    const deadline = started + durationMs;
    const counts: PhaseCounts = { calls: 0, rows: 0, errors: 0, errorSample: undefined, elapsedMs: 0 };
    let running = lanes;
    let laneMs = 0;
    const fixedRequest = fixed ? encodeRequest(scenario, data, true) : undefined;
    const next = () => {
      if (stopped() || performance.now() >= deadline) {
        laneMs += performance.now() - started;
        if (--running === 0) resolve({ ...counts, elapsedMs: laneMs / lanes });
        return;
      }
      const request = fixedRequest ?? encodeRequest(scenario, data);
      const callStarted = performance.now();
      target.call(scenario, request, false, (error, _responses, rows) => {
        if (error === undefined) {
          counts.calls++;
          counts.rows += rows ?? 0;
          histogram?.recordValue(Math.max(1, Math.round((performance.now() - callStarted) * 1000)));
        } else {
          counts.errors++;
          counts.errorSample ??= error;
        }
        next();
      });
    };
    for (let lane = 0; lane < lanes; lane++) next();
  });
}
