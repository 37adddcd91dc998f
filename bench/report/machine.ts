import os from "node:os";
import { clockTicks } from "../servers/cpu.js";
import type { BenchResults } from "./results.js";

/** machine describes the computer the figures come from. */
export function machine(): BenchResults["machine"] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    clockTicks: clockTicks(),
  };
}
