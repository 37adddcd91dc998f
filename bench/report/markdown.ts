import { sameRowCount } from "../verify.js";
import type { BenchResults, Measurement, Ratio, ScenarioResult } from "./results.js";

/** copyNote says what was compared of a COPY limit's answer, which has no rows to compare. */
export const copyNote = "same number of rows (its COPY path returns no rows, so only the count is compared)";

/** cell formats a figure for a table cell, with "—" for none. */
export const cell = (value: number | null | undefined, digits = 2) =>
  value === null || value === undefined ? "—" : value.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (r: Ratio | undefined, key: "callsPerSecond" | "p99" | "cpuPerCall") => {
  const value = r?.[key];
  return value === undefined ? "" : `${value.toFixed(2)}×`;
};
/** spread is a calls/s ratio with the lowest and highest of its rounds, e.g. `1.12× (1.05–1.20)`. */
const spread = (r: Ratio | undefined) => {
  const range = r?.roundsRange;
  return range === undefined
    ? ratio(r, "callsPerSecond")
    : `${ratio(r, "callsPerSecond")} (${range[0].toFixed(2)}–${range[1].toFixed(2)})`;
};

function row(m: Measurement, rows: boolean): string {
  return `| ${[
    m.concurrency,
    m.implementation === "service" ? "**service**" : m.implementation,
    m.callsPerSecond < 100
      ? m.callsPerSecond.toLocaleString("en-US", { maximumSignificantDigits: 3 })
      : cell(m.callsPerSecond, 0),
    ...(rows ? [cell(m.rowsPerSecond, 0)] : []),
    cell(m.p50Ms),
    cell(m.p99Ms),
    cell(m.p999Ms),
    m.errors,
    cell(m.peakRssMb, 0),
    cell(m.statementsPerRpc),
    cell(m.cpuUsPerCall, 0),
    ratio(m.vsPeer, "callsPerSecond"),
    ratio(m.vsPeer, "p99"),
    ratio(m.vsLimit, "callsPerSecond"),
  ].join(" | ")} |`;
}

function scenarioTable(s: ScenarioResult): string {
  const checks = Object.entries(s.verification)
    .filter(([impl]) => impl !== "service")
    .map(([impl, verdict]) => {
      if (verdict === sameRowCount) return `${impl} ${copyNote}`;
      return `${impl} ${verdict === "ok" ? "equal" : `DIFFERENT (${verdict})`}`;
    })
    .join(", ");
  const errors = s.measurements.filter((m) => m.errorSample !== null);
  const rows = s.measurements.some((m) => m.rowsPerSecond !== null);
  const perCall = s.measurements
    .filter((m) => m.concurrency === s.measurements[0]?.concurrency)
    .map((m) => `${m.implementation} ${cell(m.rowsPerCall, 0)}`)
    .join(", ");
  return [
    `#### ${s.title}`,
    "",
    `\`${s.method}\`; limit: \`${s.limit}\`. Sample answers compared with the service's: ${checks || "none"}.`,
    ...(rows ? ["", `rows/s counts the rows the answers carried; rows per call: ${perCall}.`] : []),
    "",
    `| concurrency | implementation | calls/s |${rows ? " rows/s |" : ""} p50 ms | p99 ms | p99.9 ms | errors | peak RSS MB | SQL/call | CPU µs/call | calls/s ÷ peer | p99 ÷ peer | calls/s ÷ limit |`,
    `| ---: | --- | ---: |${rows ? " ---: |" : ""} ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    ...s.measurements.map((m) => row(m, rows)),
    ...(errors.length > 0
      ? ["", ...errors.map((m) => `- ${m.implementation} at ${m.concurrency}: ${m.errorSample}`)]
      : []),
  ].join("\n");
}

/**
 * summary is one line per scenario and concurrency: the service's rate and
 * its ratios to the peer, the figures the performance targets are read from.
 */
function summary(r: BenchResults): string {
  const lines = r.scenarios.flatMap((s) =>
    s.measurements
      .filter((m) => m.implementation === "service")
      .map((m) => {
        const rate =
          m.rowsPerSecond === null ? `${cell(m.callsPerSecond, 0)} calls/s` : `${cell(m.rowsPerSecond, 0)} rows/s`;
        return `| ${s.title} | ${m.concurrency} | ${rate} | ${spread(m.vsPeer)} | ${ratio(m.vsPeer, "p99")} | ${cell(m.statementsPerRpc)} | ${cell(m.cpuUsPerCall, 0)} | ${ratio(m.vsPeer, "cpuPerCall")} |`;
      }),
  );
  return [
    "| scenario | in flight | service | service ÷ peer | p99 ÷ peer | service SQL/call | service CPU µs/call | CPU ÷ peer |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...lines,
  ].join("\n");
}

/** ranOn says which command ran when, on what machine, Node and PostgreSQL: the start of every report. */
export function ranOn(command: string, generatedAt: string, r: BenchResults): string {
  const m = r.machine;
  return (
    `\`${command}\` on ${generatedAt.slice(0, 10)}: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.os}; ` +
    `Node ${r.node}; PostgreSQL ${r.postgres} (${r.database.startsWith("an embedded") ? "embedded" : "DATABASE_URL"}).`
  );
}

/** markdown renders the results as bench/results/latest.md (also pasted into the README). */
export function markdown(r: BenchResults): string {
  return [
    "### Latest figures",
    "",
    `${ranOn(r.command, r.generatedAt, r)} ` +
      `Data set: ${r.dataSet.users.toLocaleString("en-US")} users × ${r.dataSet.postsPerUser} posts ` +
      `(${r.dataSet.posts.toLocaleString("en-US")} posts). Each implementation: ${r.settings.warmupMs / 1000} s warm-up, ` +
      `${r.settings.durationMs / 1000} s timed in ${r.settings.rounds} interleaved slice(s) per concurrency; ` +
      `pool ${r.settings.pool}; ${r.settings.workers} load-generator thread(s)` +
      (r.settings.fixedRequest ? "; every call sends the scenario's sample request (`--fixed-request`)." : "."),
    "",
    "Ratios: calls/s ÷ peer above 1 means the service does more calls per second (in brackets: the lowest and highest of " +
      "the rounds, each round's slice against the peer's slice of that round); p99 ÷ peer above 1 means a slower p99; " +
      "CPU ÷ peer above 1 means more CPU a call.",
    "",
    "CPU µs/call is the server process's own CPU time (user + system, every thread, from /proc/<pid>/stat in clock ticks " +
      `of ${1000 / (r.machine.clockTicks ?? 100)} ms) summed over its timed slices, divided by the calls completed in ` +
      "them; the load generator's CPU is not in it. `pg` runs inside the load generator: —.",
    "",
    summary(r),
    "",
    ...r.scenarios.flatMap((s) => [scenarioTable(s), ""]),
  ].join("\n");
}
