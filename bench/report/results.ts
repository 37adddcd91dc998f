import type { Histogram } from "hdr-histogram-js";
import type { Implementation } from "../args.js";
import type { DataSet } from "../scenarios/scenario.js";

/** Ratio is service (or peer) divided by another implementation: above 1 is more calls/s, a slower p99, more CPU a call. */
export interface Ratio {
  callsPerSecond: number;
  /** roundsRange is the lowest and highest calls/s ratio of one round's slices, each against the other's slice in that round. */
  roundsRange?: [number, number];
  p99: number;
  /** cpuPerCall is the CPU µs/call ratio, where both run in a process of their own. */
  cpuPerCall?: number;
}

/** Measurement is one implementation at one concurrency, over every timed slice. */
export interface Measurement {
  implementation: Implementation;
  concurrency: number;
  calls: number;
  callsPerSecond: number;
  /** rowsPerSecond is the rows the answers carried per second, for scenarios counted in rows; else null. */
  rowsPerSecond: number | null;
  /** rowsPerCall is the rows one successful call's answer carried on average; null where not counted. */
  rowsPerCall: number | null;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  errorSample: string | null;
  /** peakRssMb is the server process's peak resident set; null for the in-process pg limit. */
  peakRssMb: number | null;
  /** statementsPerRpc is SQL statements sent per successful call; null where not counted. */
  statementsPerRpc: number | null;
  /**
   * cpuUsPerCall is the server process's CPU time (user + system, every
   * thread, from /proc/<pid>/stat) over the timed slices, in microseconds,
   * divided by the calls completed in them; null for the in-process pg limit.
   */
  cpuUsPerCall: number | null;
  /** roundRates is the calls/s of each timed slice, in round order. */
  roundRates: number[];
  vsPeer?: Ratio;
  vsLimit?: Ratio;
}

/** ScenarioResult is a scenario's verification and measurements. */
export interface ScenarioResult {
  id: string;
  title: string;
  method: string;
  limit: "pg" | "echo";
  /** verification is "ok" or why an implementation's sample answer differs from the service's. */
  verification: Partial<Record<Implementation, string>>;
  measurements: Measurement[];
}

/** BenchResults is bench/results/latest.json. */
export interface BenchResults {
  generatedAt: string;
  command: string;
  quick: boolean;
  /** machine: clockTicks is USER_HZ, the unit of the CPU times read from /proc (absent in older results). */
  machine: { cpus: number; cpuModel: string; memoryGb: number; os: string; clockTicks?: number };
  node: string;
  postgres: string;
  database: string;
  dataSet: DataSet & { posts: number };
  settings: {
    concurrency: number[];
    warmupMs: number;
    durationMs: number;
    rounds: number;
    pool: number;
    workers: number;
    /** fixedRequest: every call sent the scenario's sample request (`--fixed-request`) instead of a random one. */
    fixedRequest: boolean;
  };
  scenarios: ScenarioResult[];
}

/** Tally accumulates one implementation at one concurrency over the interleaved slices. */
export interface Tally {
  histogram: Histogram;
  calls: number;
  /** rows is undefined where the scenario is not counted in rows. */
  rows: number | undefined;
  errors: number;
  errorSample: string | undefined;
  elapsedMs: number;
  statements: number | undefined;
  peakRss: number | undefined;
  /** cpuUs is the server process's CPU time over the timed slices; undefined for pg or without /proc. */
  cpuUs: number | undefined;
  /** roundRates is each slice's calls/s, in round order. */
  roundRates: number[];
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));
const ms = (us: number) => round(us / 1000, 3);
/** perSecond keeps 3 significant digits below 100/s, where calls last seconds (ExportPosts), one decimal above. */
export const perSecond = (count: number, elapsedMs: number) => {
  if (elapsedMs <= 0) return 0;
  const rate = (count * 1000) / elapsedMs;
  return rate < 100 ? Number(rate.toPrecision(3)) : round(rate, 1);
};

/** median is the middle value, or the mean of the two middle ones when there is an even number (NaN for none). */
export function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** measure turns a tally into the figures reported. */
export function measure(implementation: Implementation, concurrency: number, tally: Tally): Measurement {
  const h = tally.histogram;
  return {
    implementation,
    concurrency,
    calls: tally.calls,
    callsPerSecond: perSecond(tally.calls, tally.elapsedMs),
    rowsPerSecond: tally.rows === undefined ? null : perSecond(tally.rows, tally.elapsedMs),
    rowsPerCall: tally.rows === undefined || tally.calls === 0 ? null : round(tally.rows / tally.calls, 1),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    errors: tally.errors,
    errorSample: tally.errorSample ?? null,
    peakRssMb: tally.peakRss === undefined ? null : round(tally.peakRss / 2 ** 20, 1),
    statementsPerRpc:
      tally.statements === undefined || tally.calls === 0 ? null : round(tally.statements / tally.calls, 2),
    cpuUsPerCall: tally.cpuUs === undefined || tally.calls === 0 ? null : Math.round(tally.cpuUs / tally.calls),
    roundRates: tally.roundRates,
  };
}

function ratio(a: Measurement, b: Measurement | undefined): Ratio | undefined {
  if (b === undefined || b.callsPerSecond === 0 || b.p99Ms === 0) return undefined;
  const cpu = a.cpuUsPerCall !== null && b.cpuUsPerCall ? round(a.cpuUsPerCall / b.cpuUsPerCall, 2) : undefined;
  const rounds = a.roundRates.map((rate, i) => rate / (b.roundRates[i] ?? NaN)).filter(Number.isFinite);
  return {
    callsPerSecond: round(a.callsPerSecond / b.callsPerSecond, 2),
    ...(rounds.length > 1 ? { roundsRange: [round(Math.min(...rounds), 2), round(Math.max(...rounds), 2)] } : {}),
    p99: round(a.p99Ms / b.p99Ms, 2),
    ...(cpu === undefined ? {} : { cpuPerCall: cpu }),
  };
}

/** addRatios fills service/peer and service/limit (and peer/limit) at each concurrency. */
export function addRatios(scenario: ScenarioResult): void {
  const at = (impl: Implementation, c: number) =>
    scenario.measurements.find((m) => m.implementation === impl && m.concurrency === c);
  for (const m of scenario.measurements) {
    if (m.implementation === "service") m.vsPeer = ratio(m, at("peer", m.concurrency));
    if (m.implementation === "service" || m.implementation === "peer") {
      m.vsLimit = ratio(m, at(scenario.limit, m.concurrency));
    }
  }
}
