import type { BenchResults, Measurement, Ratio, ScenarioResult } from "./results.js";

const cell = (value: number | null | undefined, digits = 2) =>
  value === null || value === undefined ? "—" : value.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (r: Ratio | undefined, key: keyof Ratio) => (r === undefined ? "" : `${r[key].toFixed(2)}×`);

function row(m: Measurement): string {
  return `| ${[
    m.concurrency,
    m.implementation === "service" ? "**service**" : m.implementation,
    cell(m.callsPerSecond, 0),
    cell(m.p50Ms),
    cell(m.p99Ms),
    cell(m.p999Ms),
    m.errors,
    cell(m.peakRssMb, 0),
    cell(m.statementsPerRpc),
    ratio(m.vsPeer, "callsPerSecond"),
    ratio(m.vsPeer, "p99"),
    ratio(m.vsLimit, "callsPerSecond"),
  ].join(" | ")} |`;
}

function scenarioTable(s: ScenarioResult): string {
  const checks = Object.entries(s.verification)
    .filter(([impl]) => impl !== "service")
    .map(([impl, verdict]) => `${impl} ${verdict === "ok" ? "equal" : `DIFFERENT (${verdict})`}`)
    .join(", ");
  const errors = s.measurements.filter((m) => m.errorSample !== null);
  return [
    `#### ${s.title}`,
    "",
    `\`${s.method}\`; limit: \`${s.limit}\`. Sample answers compared with the service's: ${checks || "none"}.`,
    "",
    "| concurrency | implementation | calls/s | p50 ms | p99 ms | p99.9 ms | errors | peak RSS MB | SQL/call | calls/s ÷ peer | p99 ÷ peer | calls/s ÷ limit |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...s.measurements.map(row),
    ...(errors.length > 0
      ? ["", ...errors.map((m) => `- ${m.implementation} at ${m.concurrency}: ${m.errorSample}`)]
      : []),
  ].join("\n");
}

/** markdown renders the results as bench/results/latest.md (also pasted into the README). */
export function markdown(r: BenchResults): string {
  const m = r.machine;
  return [
    "### Latest figures",
    "",
    `\`${r.command}\` on ${r.generatedAt.slice(0, 10)}: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.os}; ` +
      `Node ${r.node}; PostgreSQL ${r.postgres} (${r.database.startsWith("an embedded") ? "embedded" : "DATABASE_URL"}). ` +
      `Data set: ${r.dataSet.users.toLocaleString("en-US")} users × ${r.dataSet.postsPerUser} posts ` +
      `(${r.dataSet.posts.toLocaleString("en-US")} posts). Each implementation: ${r.settings.warmupMs / 1000} s warm-up, ` +
      `${r.settings.durationMs / 1000} s timed in ${r.settings.rounds} interleaved slice(s) per concurrency; ` +
      `pool ${r.settings.pool}; ${r.settings.workers} load-generator thread(s).`,
    "",
    "Ratios: calls/s ÷ peer above 1 means the service does more calls per second; p99 ÷ peer above 1 means a slower p99.",
    "",
    ...r.scenarios.flatMap((s) => [scenarioTable(s), ""]),
  ].join("\n");
}
