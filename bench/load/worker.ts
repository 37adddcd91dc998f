import { parentPort, workerData } from "node:worker_threads";
import { scenarios } from "../scenarios/index.js";
import { drive, encodeRequest } from "./drive.js";
import { encodeHistogram, newHistogram } from "./histogram.js";
import type { FromWorker, TargetRef, ToWorker, WorkerSetup } from "./protocol.js";
import { grpcTarget, pgTarget } from "./target.js";
import type { Target } from "./target.js";

// A load-generator thread: drives phases and takes samples on the targets it
// is told about, keeping one channel (or pool) per target for the whole run.

const setup = workerData as WorkerSetup;
const targets = new Map<string, Target>();
const port = parentPort!;
const reply = (message: FromWorker) => port.postMessage(message);
let closing = false;

function target(ref: TargetRef): Target {
  const key = `${ref.implementation}@${ref.address ?? ""}`;
  let found = targets.get(key);
  if (found === undefined) {
    found = ref.address === undefined ? pgTarget(setup.databaseUrl, setup.pool) : grpcTarget(ref.address);
    targets.set(key, found);
  }
  return found;
}

function scenario(id: string) {
  const found = scenarios.find((s) => s.id === id);
  if (found === undefined) throw new Error(`unknown scenario ${id}`);
  return found;
}

port.on("message", async (message: ToWorker) => {
  if (message.type === "run") {
    const t = target(message.target);
    const histogram = message.record ? newHistogram() : undefined;
    const before = t.statements();
    const s = scenario(message.scenario);
    const { lanes, durationMs, fixed } = message;
    const counts = await drive(t, s, setup.data, { lanes, durationMs, fixed }, histogram, () => closing);
    reply({
      type: "ran",
      id: message.id,
      ...counts,
      histogram: histogram && encodeHistogram(histogram),
      statements: t.statements() - before,
    });
    histogram?.destroy();
  } else if (message.type === "sample") {
    const s = scenario(message.scenario);
    target(message.target).call(s, encodeRequest(s, setup.data, true), true, (error, responses, rows) =>
      reply({ type: "sampled", id: message.id, error, responses: error === undefined ? responses : undefined, rows }),
    );
  } else {
    closing = true;
    await Promise.all([...targets.values()].map((t) => t.close()));
    reply({ type: "closed", id: message.id });
  }
});
