import type { BenchOptions, Implementation } from "./args.js";
import type { LoadGenerator } from "./load/generator.js";
import { newHistogram } from "./load/histogram.js";
import type { TargetRef } from "./load/protocol.js";
import { measure, perSecond } from "./report/results.js";
import type { Measurement, Tally } from "./report/results.js";
import type { Scenario } from "./scenarios/scenario.js";
import { CpuTime } from "./servers/cpu.js";
import { PeakMemory } from "./servers/memory.js";
import type { RunningServer } from "./servers/spawn.js";

/** Bench is what measuring needs: the options, the load generator, and the running servers. */
export interface Bench {
  options: BenchOptions;
  load: LoadGenerator;
  targets: Map<Implementation, TargetRef>;
  servers: Map<Implementation, RunningServer>;
}

/** rotate starts the list `by` places later, wrapping round: each round of interleaved windows takes its turns in another order. */
export const rotate = <T>(items: T[], by: number) => items.map((_, i) => items[(i + by) % items.length]!);

function newTally(scenario: Scenario): Tally {
  return {
    histogram: newHistogram(),
    calls: 0,
    rows: scenario.rowField === undefined ? undefined : 0,
    errors: 0,
    errorSample: undefined,
    elapsedMs: 0,
    statements: undefined,
    peakRss: undefined,
    cpuUs: undefined,
    roundRates: [],
  };
}

/**
 * measureAt runs one scenario at one concurrency on every implementation:
 * a warm-up each, then `rounds` timed slices taken in turn (the order rotates
 * every round), so a noisy neighbour hurts everyone alike. A server's CPU
 * time is read around each of its slices (after the statement count is
 * asked, so the question's own cost stays outside) and summed.
 */
async function measureAt(bench: Bench, scenario: Scenario, concurrency: number): Promise<Measurement[]> {
  const { options, load, targets, servers } = bench;
  const impls = [...targets.keys()];
  const tallies = new Map(impls.map((impl) => [impl, newTally(scenario)]));
  for (const impl of impls) {
    const warm = await load.run(targets.get(impl)!, scenario.id, {
      concurrency,
      durationMs: options.warmupMs,
      fixed: options.fixedRequest,
    });
    const tally = tallies.get(impl)!;
    tally.errors += warm.errors;
    tally.errorSample ??= warm.errorSample && `warm-up: ${warm.errorSample}`;
  }
  const peaks = new Map([...servers].map(([impl, server]) => [impl, new PeakMemory(server.pid)]));
  const slice = options.durationMs / options.rounds;
  for (let round = 0; round < options.rounds; round++) {
    for (const impl of rotate(impls, round)) {
      const server = servers.get(impl);
      const before = (await server?.statements()) ?? 0;
      const cpu = server && new CpuTime(server.pid);
      const result = await load.run(targets.get(impl)!, scenario.id, {
        concurrency,
        durationMs: slice,
        record: true,
        fixed: options.fixedRequest,
      });
      const cpuUs = cpu?.stop();
      const sent = server ? (await server.statements()) - before : result.statements;
      const tally = tallies.get(impl)!;
      tally.histogram.add(result.histogram!);
      result.histogram!.destroy();
      tally.calls += result.calls;
      if (tally.rows !== undefined) tally.rows += result.rows;
      tally.errors += result.errors;
      tally.errorSample ??= result.errorSample;
      tally.elapsedMs += result.elapsedMs;
      tally.roundRates.push(perSecond(result.calls, result.elapsedMs));
      tally.statements = (tally.statements ?? 0) + sent;
      if (cpuUs !== undefined) tally.cpuUs = (tally.cpuUs ?? 0) + cpuUs;
    }
  }
  for (const [impl, peak] of peaks) tallies.get(impl)!.peakRss = peak.stop();
  return impls.map((impl) => {
    const tally = tallies.get(impl)!;
    const m = measure(impl, concurrency, tally);
    tally.histogram.destroy();
    return m;
  });
}

/** sweep is the concurrency levels a scenario runs at: its own, unless --concurrency was given. */
function sweep(options: BenchOptions, scenario: Scenario): number[] {
  return options.concurrencyGiven ? options.concurrency : (scenario.concurrency ?? options.concurrency);
}

const rate = (m: Measurement) =>
  m.rowsPerSecond === null
    ? `${Number(m.callsPerSecond.toPrecision(3))}/s`
    : `${Math.round(m.rowsPerSecond).toLocaleString("en-US")} rows/s`;

/** measureScenario sweeps the concurrency levels, printing a line per level. */
export async function measureScenario(bench: Bench, scenario: Scenario): Promise<Measurement[]> {
  const all: Measurement[] = [];
  for (const concurrency of sweep(bench.options, scenario)) {
    const measured = await measureAt(bench, scenario, concurrency);
    const line = measured
      .map((m) => `${m.implementation} ${rate(m)} p99 ${m.p99Ms} ms${m.errors ? ` ${m.errors} errors` : ""}`)
      .join(" | ");
    console.log(`  ${scenario.title} @${concurrency}: ${line}`);
    all.push(...measured);
  }
  return all;
}
