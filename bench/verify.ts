import { equals, fromBinary, toJson } from "@bufbuild/protobuf";
import type { DescMessage, JsonValue, MessageShape } from "@bufbuild/protobuf";
import type { Implementation } from "./args.js";
import type { LoadGenerator } from "./load/generator.js";
import type { TargetRef } from "./load/protocol.js";
import type { Scenario } from "./scenarios/scenario.js";

/**
 * sameRowCount is the verdict on a direct pg limit (COPY) whose row count is
 * the service's: COPY returns no rows, so nothing more can be compared. It is
 * not a difference, and it is reported as what it is.
 */
export const sameRowCount = "same row count";

/** accepted tells whether a verdict lets the run pass. */
export const accepted = (verdict: string) => verdict === "ok" || verdict === sameRowCount;

const clip = (s: string | undefined) => (s !== undefined && s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** firstDifference names the first field (JSON path) where actual and expected differ. */
function firstDifference(actual: JsonValue | undefined, expected: JsonValue | undefined, at = ""): string | undefined {
  if (typeof actual === "object" && actual !== null && typeof expected === "object" && expected !== null) {
    const a = actual as Record<string, JsonValue>;
    const e = expected as Record<string, JsonValue>;
    for (const key of new Set([...Object.keys(e), ...Object.keys(a)])) {
      const found = firstDifference(a[key], e[key], at === "" ? key : `${at}.${key}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (JSON.stringify(actual) === JSON.stringify(expected)) return undefined;
  return `${at || "message"} is ${clip(JSON.stringify(actual)) ?? "unset"} instead of ${clip(JSON.stringify(expected)) ?? "unset"}`;
}

function decode(scenario: Scenario, responses: Buffer[]): MessageShape<DescMessage>[] {
  return responses.map((bytes) => {
    const message = fromBinary(scenario.method.output, bytes);
    scenario.normalize?.(message);
    return message;
  });
}

function compare(scenario: Scenario, expected: MessageShape<DescMessage>[], actual: MessageShape<DescMessage>[]) {
  const schema = scenario.method.output;
  if (expected.length !== actual.length) return `${actual.length} messages instead of ${expected.length}`;
  const i = expected.findIndex((e, n) => !equals(schema, e, actual[n]!));
  if (i === -1) return "ok";
  const where = firstDifference(toJson(schema, actual[i]!), toJson(schema, expected[i]!)) ?? "a difference JSON hides";
  return `message ${i}: ${where}`;
}

/** judge compares one implementation's sample answer with the service's (decoded, or its rows for a COPY limit). */
function judge(
  scenario: Scenario,
  impl: Implementation,
  answer: { responses?: Buffer[]; rows?: number; error?: string },
  expected: MessageShape<DescMessage>[],
  expectedRows: number | undefined,
): string {
  if (answer.responses === undefined) return `failed: ${answer.error}`;
  if (impl === "pg" && scenario.direct !== undefined) {
    if (answer.rows === expectedRows) return sameRowCount;
    return `${answer.rows ?? "no"} rows instead of ${expectedRows ?? "none counted"}`;
  }
  try {
    return compare(scenario, expected, decode(scenario, answer.responses));
  } catch (error) {
    return `undecodable answer: ${String(error)}`;
  }
}

/**
 * verifyScenario sends the scenario's sample request to every implementation
 * and compares each decoded answer with the service's, after normalize; a
 * direct pg limit's answer is a row count, compared with the rows of the
 * service's answer. The service's answer also becomes the echo's canned
 * answer: played once for the echo's own sample, then `repeat` times a call
 * for the measurements (a stream as long as a measured call's).
 */
export async function verifyScenario(
  scenario: Scenario,
  targets: Map<Implementation, TargetRef>,
  load: LoadGenerator,
  setCanned: (path: string, responses: Buffer[], repeat: number) => Promise<void>,
  repeat: number,
): Promise<Partial<Record<Implementation, string>>> {
  const verdicts: Partial<Record<Implementation, string>> = {};
  const service = await load.sample(targets.get("service")!, scenario.id);
  if (service.responses === undefined) {
    for (const impl of targets.keys()) verdicts[impl] = `the service failed: ${service.error}`;
    return verdicts;
  }
  verdicts.service = "ok";
  const expected = decode(scenario, service.responses);
  const path = `/${scenario.method.parent.typeName}/${scenario.method.name}`;
  if (targets.has("echo")) await setCanned(path, service.responses, 1);
  for (const [impl, target] of targets) {
    if (impl === "service") continue;
    const answer = await load.sample(target, scenario.id);
    verdicts[impl] = judge(scenario, impl, answer, expected, service.rows);
  }
  if (targets.has("echo") && repeat !== 1) await setCanned(path, service.responses, repeat);
  return verdicts;
}
