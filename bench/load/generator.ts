import { Worker } from "node:worker_threads";
import type { Histogram } from "hdr-histogram-js";
import { addEncoded, newHistogram } from "./histogram.js";
import type { FromWorker, PhaseCounts, TargetRef, ToWorker, WorkerSetup } from "./protocol.js";

/** PhaseResult is one phase over every thread: merged latencies and counts. */
export interface PhaseResult extends PhaseCounts {
  /** histogram holds successful calls' latencies in microseconds (timed phases only). */
  histogram: Histogram | undefined;
  /** statements is SQL sent by the in-process pg limit during the phase. */
  statements: number;
}

/** RunOptions is one phase of LoadGenerator.run: how many calls in flight, for how long, what is sent and what kept. */
export interface RunOptions {
  concurrency: number;
  durationMs: number;
  /** record keeps successful calls' latencies in the result's histogram: timed phases, not warm-ups. */
  record?: boolean;
  /** fixed sends the scenario's sample request on every call instead of drawing one per call. */
  fixed?: boolean;
}

type Ask = { [K in ToWorker["type"]]: Omit<Extract<ToWorker, { type: K }>, "id"> }[ToWorker["type"]];

/** share splits total as evenly as possible over n parts; part i gets share(total, n, i). */
const share = (total: number, n: number, i: number) => Math.floor(total / n) + (i < total % n ? 1 : 0);

// Workers are eval'd CommonJS that registers tsx and imports the TypeScript
// entry: on Node 20 a worker does not inherit the parent's --import hooks.
const bootstrap = (entry: string, tsx: string) =>
  `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;

/**
 * LoadGenerator is the load generator's threads, apart from the servers'
 * processes: a phase's lanes are split across threads and their results merged.
 */
export class LoadGenerator {
  private nextId = 0;
  private readonly pending = new Map<number, (message: FromWorker) => void>();

  private constructor(private readonly workers: Worker[]) {
    for (const worker of workers) {
      worker.on("message", (message: FromWorker) => {
        this.pending.get(message.id)?.(message);
        this.pending.delete(message.id);
      });
      worker.on("error", (error) => {
        console.error("load generator thread failed:", error);
        process.exitCode = 1;
      });
    }
  }

  /** start spawns `threads` load-generator threads; they share the pg limit's pool size. */
  static start(threads: number, setup: WorkerSetup): LoadGenerator {
    const entry = new URL("./worker.ts", import.meta.url).href;
    const tsx = import.meta.resolve("tsx/esm/api");
    const workers = Array.from(
      { length: threads },
      (_, i) =>
        new Worker(bootstrap(entry, tsx), {
          eval: true,
          workerData: { ...setup, pool: Math.max(1, share(setup.pool, threads, i)) } satisfies WorkerSetup,
        }),
    );
    return new LoadGenerator(workers);
  }

  private ask(worker: Worker, message: Ask): Promise<FromWorker> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ ...message, id });
    });
  }

  /** run keeps `concurrency` calls in flight on target for durationMs, split across the threads. */
  async run(
    target: TargetRef,
    scenario: string,
    { concurrency, durationMs, record = false, fixed = false }: RunOptions,
  ): Promise<PhaseResult> {
    const answers = await Promise.all(
      this.workers
        .map((worker, i) => ({ worker, lanes: share(concurrency, this.workers.length, i) }))
        .filter(({ lanes }) => lanes > 0)
        .map(async ({ worker, lanes }) => ({
          lanes,
          answer: await this.ask(worker, { type: "run", target, scenario, lanes, durationMs, record, fixed }),
        })),
    );
    const result: PhaseResult = {
      calls: 0,
      rows: 0,
      errors: 0,
      errorSample: undefined,
      elapsedMs: 0,
      statements: 0,
      histogram: record ? newHistogram() : undefined,
    };
    for (const { lanes, answer } of answers) {
      if (answer.type !== "ran") continue;
      result.calls += answer.calls;
      result.rows += answer.rows;
      result.errors += answer.errors;
      result.errorSample ??= answer.errorSample;
      // Each thread's mean lane time, weighted by its lanes: the mean over every lane.
      result.elapsedMs += (answer.elapsedMs * lanes) / concurrency;
      result.statements += answer.statements;
      if (result.histogram && answer.histogram) addEncoded(result.histogram, answer.histogram);
    }
    return result;
  }

  /** sample sends the scenario's sample request once and returns the encoded answers and their rows. */
  async sample(target: TargetRef, scenario: string): Promise<{ responses?: Buffer[]; rows?: number; error?: string }> {
    const answer = await this.ask(this.workers[0]!, { type: "sample", target, scenario });
    if (answer.type !== "sampled") throw new Error("unexpected answer from the load generator");
    if (answer.error !== undefined || answer.responses === undefined) return { error: answer.error ?? "no answer" };
    return { responses: answer.responses.map((r) => Buffer.from(r)), rows: answer.rows };
  }

  /** close ends the phase running, closes every channel and pool (waiting up to 5 s), then ends the threads. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.workers.map((w) => this.ask(w, { type: "close" }))),
      new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
    ]);
    clearTimeout(timer);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
