import { implementations } from "../args.js";
import type { BenchResults, Measurement, ScenarioResult } from "./results.js";

const colors = { service: "#d62728", peer: "#1f77b4", pg: "#2ca02c", echo: "#7f7f7f" } as const;
const panel = { width: 420, height: 220, left: 60, right: 16, top: 28, bottom: 36 };
const legendHeight = 30;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((f) => f * step).find((v) => v >= value) ?? value;
}

function plot(
  s: ScenarioResult,
  levels: number[],
  pick: (m: Measurement) => number,
  label: string,
  x0: number,
  y0: number,
) {
  const w = panel.width - panel.left - panel.right;
  const h = panel.height - panel.top - panel.bottom;
  const max = niceMax(Math.max(...s.measurements.map(pick)));
  const x = (c: number) =>
    x0 + panel.left + (levels.length === 1 ? w / 2 : (levels.indexOf(c) * w) / (levels.length - 1));
  const y = (v: number) => y0 + panel.top + h - (v / max) * h;
  const parts = [
    `<text x="${x0 + panel.left}" y="${y0 + 18}" font-weight="bold">${esc(s.title)}: ${label}</text>`,
    `<rect x="${x0 + panel.left}" y="${y0 + panel.top}" width="${w}" height="${h}" fill="none" stroke="#ccc"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(
      `<line x1="${x0 + panel.left}" x2="${x0 + panel.left + w}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${x0 + panel.left - 6}" y="${y(v) + 4}" text-anchor="end">${Number(v.toPrecision(3))}</text>`,
    );
  }
  for (const c of levels) {
    parts.push(`<text x="${x(c)}" y="${y0 + panel.top + h + 16}" text-anchor="middle">${c}</text>`);
  }
  parts.push(
    `<text x="${x0 + panel.left + w / 2}" y="${y0 + panel.height - 4}" text-anchor="middle">calls in flight</text>`,
  );
  for (const impl of implementations) {
    const points = s.measurements
      .filter((m) => m.implementation === impl)
      .sort((a, b) => a.concurrency - b.concurrency)
      .map((m) => `${x(m.concurrency).toFixed(1)},${y(pick(m)).toFixed(1)}`);
    if (points.length === 0) continue;
    parts.push(
      `<polyline fill="none" stroke="${colors[impl]}" stroke-width="2" points="${points.join(" ")}"/>`,
      ...points.map((p) => {
        const [cx, cy] = p.split(",");
        return `<circle cx="${cx}" cy="${cy}" r="3" fill="${colors[impl]}"/>`;
      }),
    );
  }
  return parts.join("\n");
}

/** svg charts calls/s and p99 against concurrency, one row per scenario, one line per implementation. */
export function svg(r: BenchResults): string {
  // A scenario may sweep levels of its own (ExportPosts): each row has its measured ones.
  const levelsOf = (s: ScenarioResult) => [...new Set(s.measurements.map((m) => m.concurrency))].sort((a, b) => a - b);
  const width = panel.width * 2;
  const height = legendHeight + panel.height * r.scenarios.length;
  const legend = implementations.map(
    (impl, i) =>
      `<rect x="${panel.left + i * 110}" y="10" width="14" height="4" fill="${colors[impl]}"/>` +
      `<text x="${panel.left + i * 110 + 20}" y="16">${impl}</text>`,
  );
  const rows = r.scenarios.map((s, i) => {
    const y0 = legendHeight + i * panel.height;
    return [
      plot(s, levelsOf(s), (m) => m.callsPerSecond, "calls/s", 0, y0),
      plot(s, levelsOf(s), (m) => m.p99Ms, "p99 ms", panel.width, y0),
    ].join("\n");
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...legend,
    ...rows,
    "</svg>",
    "",
  ].join("\n");
}
