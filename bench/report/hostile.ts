import type { Histogram } from "hdr-histogram-js";
import { newHistogram } from "../load/histogram.js";
import type { BatchCounts } from "../load/hostile.js";

/** Condition is one kind of window of `npm run bench:hostile`: which hostile clients run beside GetUser. */
export interface Condition {
  title: string;
  exports: number;
  batches: number;
}

/** Window is one measured window: GetUser's latencies and the service's peak RSS, under one condition. */
export interface Window {
  condition: Condition;
  calls: number;
  seconds: number;
  histogram: Histogram;
  peakRss: number | undefined;
  batches: BatchCounts[];
}

const ms = (h: Histogram, p: number) => h.getValueAtPercentile(p) / 1000;
const mb = (bytes: number | undefined) => (bytes === undefined ? "?" : String(Math.round(bytes / 2 ** 20)));

/** hostileTable is the markdown table: one row per condition, its windows merged, p99 against the first condition's. */
export function hostileTable(conditions: Condition[], windows: Window[]): string {
  const rows = conditions.map((condition) => {
    const chosen = windows.filter((w) => w.condition === condition);
    const histogram = newHistogram();
    for (const w of chosen) histogram.add(w.histogram);
    const calls = chosen.reduce((n, w) => n + w.calls, 0);
    const seconds = chosen.reduce((n, w) => n + w.seconds, 0);
    const batches = chosen.flatMap((w) => w.batches);
    const sum = (key: "ok" | "tooLarge") => batches.reduce((n, b) => n + b[key], 0);
    return {
      condition,
      rate: calls / seconds,
      p50: ms(histogram, 50),
      p99: ms(histogram, 99),
      p99s: chosen.map((w) => ms(w.histogram, 99).toFixed(1)).join(", "),
      rss: chosen.map((w) => mb(w.peakRss)).join(", "),
      batches: condition.batches === 0 ? "—" : `${sum("ok")} OK, ${sum("tooLarge")} REPLY_TOO_LARGE`,
    };
  });
  const base = rows[0]!;
  return [
    "| beside GetUser | GetUser calls/s | p50 (ms) | p99 (ms) | p99 ÷ without | p99 per round (ms) | service peak RSS per round (MB) | BatchGetUsers FULL answers |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows.map(
      (r) =>
        `| ${r.condition.title} | ${Math.round(r.rate)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r === base ? "1" : `**${(r.p99 / base.p99).toFixed(2)}**`} | ${r.p99s} | ${r.rss} | ${r.batches} |`,
    ),
  ].join("\n");
}
