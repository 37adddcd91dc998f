import type { Histogram } from "hdr-histogram-js";
import { newHistogram } from "../load/histogram.js";
import type { ThreadShare } from "../servers/cpu.js";
import { cell } from "./markdown.js";

/** Tool is what sent the calls of a window of `npm run bench:h2load`. */
export type Tool = "h2load" | "harness" | "harness-random";

/** toolTitles name the tools in the report. */
export const toolTitles: Record<Tool, string> = {
  h2load: "h2load, fixed id",
  harness: "harness, fixed id",
  "harness-random": "harness, random ids",
};

/** Compared is what the cross-check runs the tools on. */
export type Compared = "service" | "peer";

/** Window is one timed window: one tool on one implementation at one number of calls in flight. */
export interface Window {
  tool: Tool;
  implementation: Compared;
  inFlight: number;
  calls: number;
  elapsedMs: number;
  histogram: Histogram;
  /** serverCpuUs is the server process's CPU time over the window; clientCpuUs the load generator's. */
  serverCpuUs: number | undefined;
  clientCpuUs: number | undefined;
  statements: number;
  /** serverThread and clientThread are the busiest thread of the server and of the harness (not h2load's). */
  serverThread: ThreadShare | undefined;
  clientThread: ThreadShare | undefined;
}

/** Figures are one tool on one implementation at one concurrency, over its rounds. */
export interface Figures {
  callsPerSecond: number;
  /** perRound is each round's calls/s, for the spread. */
  perRound: number[];
  p50Ms: number;
  p99Ms: number;
  cpuUsPerCall: number | undefined;
  clientCpuUsPerCall: number | undefined;
  statementsPerCall: number;
  /** serverThread and clientThread are the busiest threads' shares, averaged over the windows. */
  serverThread: ThreadShare | undefined;
  clientThread: ThreadShare | undefined;
}

const sum = (values: (number | undefined)[]) =>
  values.some((v) => v === undefined) ? undefined : values.reduce<number>((n, v) => n + v!, 0);

function mean(shares: (ThreadShare | undefined)[]): ThreadShare | undefined {
  const running = sum(shares.map((s) => s?.running));
  const waiting = sum(shares.map((s) => s?.waiting));
  if (running === undefined || waiting === undefined || shares.length === 0) return undefined;
  return { running: running / shares.length, waiting: waiting / shares.length };
}

/** figures merges the windows of one tool, implementation and concurrency. */
export function figures(windows: Window[]): Figures {
  const histogram = newHistogram();
  for (const w of windows) histogram.add(w.histogram);
  const calls = windows.reduce((n, w) => n + w.calls, 0);
  const elapsedMs = windows.reduce((n, w) => n + w.elapsedMs, 0);
  const per = (total: number | undefined) => (total === undefined || calls === 0 ? undefined : total / calls);
  const result: Figures = {
    callsPerSecond: elapsedMs > 0 ? (calls * 1000) / elapsedMs : 0,
    perRound: windows.map((w) => (w.elapsedMs > 0 ? (w.calls * 1000) / w.elapsedMs : 0)),
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    cpuUsPerCall: per(sum(windows.map((w) => w.serverCpuUs))),
    clientCpuUsPerCall: per(sum(windows.map((w) => w.clientCpuUs))),
    statementsPerCall: per(windows.reduce((n, w) => n + w.statements, 0)) ?? 0,
    serverThread: mean(windows.map((w) => w.serverThread)),
    clientThread: mean(windows.map((w) => w.clientThread)),
  };
  histogram.destroy();
  return result;
}

/** Pair is service and peer under one tool at one concurrency. */
export interface Pair {
  tool: Tool;
  inFlight: number;
  service: Figures;
  peer: Figures;
}

const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || !b ? undefined : a / b);
const times = (r: number | undefined) => (r === undefined ? "—" : `${r.toFixed(2)}×`);
const fixed = (n: number | undefined, digits: number) =>
  n === undefined ? "—" : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const spread = (values: number[]) => values.map((v) => fixed(v, 2)).join(", ");

/** perRoundRatios is service ÷ peer calls/s in each round (windows are in round order). */
const perRoundRatios = (p: Pair) => p.service.perRound.map((s, i) => s / p.peer.perRound[i]!);

/** throughputTable: calls/s, their ratio (overall and per round), p50 and p99 of each pair. */
export function throughputTable(pairs: Pair[]): string {
  return [
    "| in flight | load generator | service calls/s | peer calls/s | service ÷ peer | ÷ per round | service p50 ms | peer p50 ms | service p99 ms | peer p99 ms |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...pairs.map(
      (p) =>
        `| ${p.inFlight} | ${toolTitles[p.tool]} | ${cell(p.service.callsPerSecond, 0)} | ${cell(p.peer.callsPerSecond, 0)} | ` +
        `**${times(ratio(p.service.callsPerSecond, p.peer.callsPerSecond))}** | ${spread(perRoundRatios(p))} | ` +
        `${fixed(p.service.p50Ms, 2)} | ${fixed(p.peer.p50Ms, 2)} | ${fixed(p.service.p99Ms, 2)} | ${fixed(p.peer.p99Ms, 2)} |`,
    ),
  ].join("\n");
}

/** cpuTable: server CPU µs per call, its ratio, SQL per call, and the load generator's own CPU per call. */
export function cpuTable(pairs: Pair[]): string {
  return [
    "| in flight | load generator | service CPU µs/call | peer CPU µs/call | CPU service ÷ peer | service SQL/call | peer SQL/call | load generator CPU µs/call (service, peer) |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...pairs.map(
      (p) =>
        `| ${p.inFlight} | ${toolTitles[p.tool]} | ${fixed(p.service.cpuUsPerCall, 0)} | ${fixed(p.peer.cpuUsPerCall, 0)} | ` +
        `${times(ratio(p.service.cpuUsPerCall, p.peer.cpuUsPerCall))} | ${fixed(p.service.statementsPerCall, 2)} | ` +
        `${fixed(p.peer.statementsPerCall, 2)} | ${fixed(p.service.clientCpuUsPerCall, 0)}, ${fixed(p.peer.clientCpuUsPerCall, 0)} |`,
    ),
  ].join("\n");
}

/** shares shows a busiest thread's window as "on a CPU % + waiting for one %", or "—" without /proc. */
export const shares = (t: ThreadShare | undefined) =>
  t === undefined ? "—" : `${Math.round(t.running * 100)}% + ${Math.round(t.waiting * 100)}%`;

/**
 * threadTable: how the busiest thread of each server and of the harness
 * spent the windows, on a CPU + waiting for one: near 100% in all, that
 * thread bounded the calls (h2load's threads are not read: it ends with its window).
 */
export function threadTable(pairs: Pair[]): string {
  return [
    "| in flight | load generator | service's thread | its load generator's | peer's thread | its load generator's |",
    "| ---: | --- | ---: | ---: | ---: | ---: |",
    ...pairs.map(
      (p) =>
        `| ${p.inFlight} | ${toolTitles[p.tool]} | ${shares(p.service.serverThread)} | ${shares(p.service.clientThread)} | ` +
        `${shares(p.peer.serverThread)} | ${shares(p.peer.clientThread)} |`,
    ),
  ].join("\n");
}

/** FigureKind is what a compared figure counts, which says how many decimals it is shown with. */
export type FigureKind = "calls/s" | "ms" | "µs" | "ratio";

const decimals: Record<FigureKind, number> = { "calls/s": 0, ms: 2, µs: 0, ratio: 2 };

/** Disagreement is one figure as h2load and the harness measured it, the same request on the same servers. */
export interface Disagreement {
  inFlight: number;
  figure: string;
  kind: FigureKind;
  h2load: number | undefined;
  harness: number | undefined;
  /** percent is (h2load − harness) ÷ harness × 100. */
  percent: number | undefined;
}

/** disagreements lines up h2load's figures with the harness's (fixed id) at each concurrency. */
export function disagreements(pairs: Pair[]): Disagreement[] {
  const levels = [...new Set(pairs.map((p) => p.inFlight))];
  return levels.flatMap((inFlight) => {
    const h = pairs.find((p) => p.inFlight === inFlight && p.tool === "h2load");
    const o = pairs.find((p) => p.inFlight === inFlight && p.tool === "harness");
    if (h === undefined || o === undefined) return [];
    const rows: [string, FigureKind, (p: Pair) => number | undefined][] = [
      ["service calls/s", "calls/s", (p) => p.service.callsPerSecond],
      ["peer calls/s", "calls/s", (p) => p.peer.callsPerSecond],
      ["calls/s service ÷ peer", "ratio", (p) => ratio(p.service.callsPerSecond, p.peer.callsPerSecond)],
      ["service p50 ms", "ms", (p) => p.service.p50Ms],
      ["peer p50 ms", "ms", (p) => p.peer.p50Ms],
      ["p50 peer ÷ service", "ratio", (p) => ratio(p.peer.p50Ms, p.service.p50Ms)],
      ["service CPU µs/call", "µs", (p) => p.service.cpuUsPerCall],
      ["peer CPU µs/call", "µs", (p) => p.peer.cpuUsPerCall],
      ["CPU/call service ÷ peer", "ratio", (p) => ratio(p.service.cpuUsPerCall, p.peer.cpuUsPerCall)],
    ];
    return rows.map(([figure, kind, of]) => {
      const [a, b] = [of(h), of(o)];
      return {
        inFlight,
        figure,
        kind,
        h2load: a,
        harness: b,
        percent: a === undefined || !b ? undefined : (a / b - 1) * 100,
      };
    });
  });
}

/** disagreementTable shows each figure by both tools; beyond `limit` percent it is in bold. */
export function disagreementTable(rows: Disagreement[], limit: number): string {
  return [
    "| in flight | figure | h2load | harness | h2load ÷ harness − 1 |",
    "| ---: | --- | ---: | ---: | ---: |",
    ...rows.map((r) => {
      const pct = r.percent === undefined ? "—" : `${r.percent >= 0 ? "+" : ""}${r.percent.toFixed(1)}%`;
      const shown = r.percent !== undefined && Math.abs(r.percent) > limit ? `**${pct}**` : pct;
      return `| ${r.inFlight} | ${r.figure} | ${fixed(r.h2load, decimals[r.kind])} | ${fixed(r.harness, decimals[r.kind])} | ${shown} |`;
    }),
  ].join("\n");
}
