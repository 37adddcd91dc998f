import { appendFileSync } from "node:fs";
import v8 from "node:v8";

// Loaded with `--import` into a server process by bench/export-memory.ts:
// every 50 ms it appends the process's V8 heap figures to the file named by
// BENCH_HEAP_SAMPLES (one JSON line each), so the orchestrator can tell V8's
// heap, and its old generation, apart from the rest of the resident set.

/** HeapSample is one line of the samples file; sizes in bytes. */
export interface HeapSample {
  t: number;
  heapUsed: number;
  heapTotal: number;
  oldSpace: number;
  external: number;
}

const file = process.env.BENCH_HEAP_SAMPLES;
if (file) {
  setInterval(() => {
    const { heapUsed, heapTotal, external } = process.memoryUsage();
    const oldSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === "old_space")?.space_size ?? 0;
    const sample: HeapSample = { t: Date.now(), heapUsed, heapTotal, oldSpace, external };
    appendFileSync(file, `${JSON.stringify(sample)}\n`);
  }, 50).unref();
}
