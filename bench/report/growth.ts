import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Implementation } from "../args.js";
import { cell, ranOn } from "./markdown.js";
import type { BenchResults } from "./results.js";

/** growthTarget is issue 6's bound: at the largest size, no figure worse than this many times the smallest's. */
export const growthTarget = 1.5;

/** GrowthRow is one implementation at one concurrency across the sizes, in size order. */
export interface GrowthRow {
  implementation: Implementation;
  concurrency: number;
  callsPerSecond: (number | null)[];
  p99Ms: (number | null)[];
  /** callsPerSecondRatio is each size's calls/s ÷ the smallest size's (the first is always 1). */
  callsPerSecondRatio: (number | null)[];
  /** p99Ratio is each size's p99 ÷ the smallest size's (the first is always 1). */
  p99Ratio: (number | null)[];
  /** withinTarget: every size's calls/s ratio ≥ 1 ÷ growthTarget and p99 ratio ≤ growthTarget; null if a figure is missing. */
  withinTarget: boolean | null;
}

/** GrowthResults is bench/results/growth.json: one `npm run bench` per size, compared. */
export interface GrowthResults {
  generatedAt: string;
  command: string;
  target: number;
  users: number[];
  scenarios: { id: string; title: string; rows: GrowthRow[] }[];
  /** runs are each size's full results, as `npm run bench` wrote them. */
  runs: BenchResults[];
}

const round = (n: number) => Number(n.toFixed(2));
const divide = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : round(a / b));

/** compareSizes lines up every scenario of the first run with the same scenario in the others. */
export function compareSizes(runs: BenchResults[]): GrowthResults["scenarios"] {
  return (runs[0]?.scenarios ?? []).map((first) => {
    const at = (run: BenchResults, impl: Implementation, c: number) =>
      run.scenarios
        .find((s) => s.id === first.id)
        ?.measurements.find((m) => m.implementation === impl && m.concurrency === c);
    const rows = first.measurements.map(({ implementation, concurrency }): GrowthRow => {
      const found = runs.map((run) => at(run, implementation, concurrency));
      const callsPerSecond = found.map((m) => m?.callsPerSecond ?? null);
      const p99Ms = found.map((m) => m?.p99Ms ?? null);
      const callsPerSecondRatio = callsPerSecond.map((v) => divide(v, callsPerSecond[0]!));
      const p99Ratio = p99Ms.map((v) => divide(v, p99Ms[0]!));
      const ratios = [...callsPerSecondRatio, ...p99Ratio];
      return {
        implementation,
        concurrency,
        callsPerSecond,
        p99Ms,
        callsPerSecondRatio,
        p99Ratio,
        withinTarget: ratios.includes(null)
          ? null
          : callsPerSecondRatio.every((r) => r! >= 1 / growthTarget) && p99Ratio.every((r) => r! <= growthTarget),
      };
    });
    return { id: first.id, title: first.title, rows };
  });
}

const size = (users: number) => users.toLocaleString("en-US");
const times = (r: number | null) => (r === null ? "—" : `${r.toFixed(2)}×`);

function table(s: GrowthResults["scenarios"][number], users: number[]): string {
  const larger = users.slice(1);
  const header = [
    "concurrency",
    "implementation",
    ...users.map((u) => `calls/s at ${size(u)}`),
    ...larger.map((u) => `calls/s ${size(u)} ÷ ${size(users[0]!)}`),
    ...users.map((u) => `p99 ms at ${size(u)}`),
    ...larger.map((u) => `p99 ${size(u)} ÷ ${size(users[0]!)}`),
    `within ${growthTarget}×`,
  ];
  const align = header.map((_, i) => (i === 1 ? "---" : i === header.length - 1 ? ":---:" : "---:"));
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [
    `#### ${s.title}`,
    "",
    line(header),
    line(align),
    ...s.rows.map((r) =>
      line([
        r.concurrency,
        r.implementation === "service" ? "**service**" : r.implementation,
        ...r.callsPerSecond.map((v) => cell(v, 0)),
        ...r.callsPerSecondRatio.slice(1).map(times),
        ...r.p99Ms.map((v) => cell(v)),
        ...r.p99Ratio.slice(1).map(times),
        r.withinTarget === null ? "—" : r.withinTarget ? "yes" : "**no**",
      ]),
    ),
  ].join("\n");
}

/** growthMarkdown renders bench/results/growth.md. */
export function growthMarkdown(g: GrowthResults): string {
  const r = g.runs[0]!;
  const s = r.settings;
  return [
    "### Cost as the data grows",
    "",
    `${ranOn(g.command, g.generatedAt, r)} ` +
      `Data sets: ${g.users.map(size).join(" and ")} users × ${r.dataSet.postsPerUser} posts, each seeded into a fresh ` +
      `database, measured by its own \`npm run bench\` and dropped before the next. Each implementation: ` +
      `${s.warmupMs / 1000} s warm-up, ${s.durationMs / 1000} s timed in ${s.rounds} interleaved slice(s) per concurrency; ` +
      `pool ${s.pool}.`,
    "",
    `Ratios are the larger size's figure ÷ the smallest's. Within ${growthTarget}× means calls/s ratio at least ` +
      `${round(1 / growthTarget)} (1 ÷ ${growthTarget}) and p99 ratio at most ${growthTarget}.`,
    "",
    ...g.scenarios.flatMap((scenario) => [table(scenario, g.users), ""]),
  ].join("\n");
}

/** writeGrowth writes growth.json and growth.md into outDir. */
export function writeGrowth(outDir: string, g: GrowthResults): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "growth.json"), `${JSON.stringify(g, null, 2)}\n`);
  writeFileSync(path.join(outDir, "growth.md"), growthMarkdown(g));
}
