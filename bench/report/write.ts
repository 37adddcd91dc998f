import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { accepted } from "../verify.js";
import { markdown } from "./markdown.js";
import type { BenchResults } from "./results.js";
import { svg } from "./svg.js";

/** writeResults writes latest.json, latest.md and latest.svg into outDir, replacing the previous run's. */
export function writeResults(outDir: string, report: BenchResults): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(outDir, "latest.md"), markdown(report));
  writeFileSync(path.join(outDir, "latest.svg"), svg(report));
}

/**
 * problems lists what makes a run fail: answers that differ from the
 * service's (for a COPY limit, its row count), and failed calls.
 */
export function problems(report: BenchResults): string[] {
  return report.scenarios.flatMap((s) => [
    ...Object.entries(s.verification)
      .filter(([, verdict]) => !accepted(verdict))
      .map(([impl, verdict]) => `${s.title}: ${impl} answered differently: ${verdict}`),
    ...s.measurements
      .filter((m) => m.errors > 0)
      .map((m) => `${s.title} @${m.concurrency}: ${m.implementation} had ${m.errors} errors (${m.errorSample})`),
  ]);
}
