import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import type { Histogram } from "hdr-histogram-js";
import { CpuTime } from "../servers/cpu.js";
import { newHistogram } from "./histogram.js";

// The independent half of `npm run bench:h2load`: nghttp2's h2load and nghttp
// (Debian's nghttp2-client) sending one framed gRPC request body over one
// HTTP/2 connection. h2load judges answers by their HTTP status, and a gRPC
// error is HTTP 200 with grpc-status in the trailers, so each window is also
// checked by the bytes of message it received: every call of the fixed body
// must carry exactly the expected answer's message, and an error carries none.

/** grpcHeaders are what makes a POST a gRPC call. */
const grpcHeaders = ["-H", "content-type: application/grpc", "-H", "te: trailers"];

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") {
        reject(new Error(`${command} is not installed: it comes with Debian's nghttp2-client`));
      } else if (error) {
        reject(new Error(`${command} failed: ${error.message}\n${stdout}${stderr}`.trim()));
      } else {
        resolve(stdout);
      }
    }),
  );
}

const count = (text: string, pattern: RegExp, what: string): number[] => {
  const match = pattern.exec(text);
  if (match === null) throw new Error(`h2load printed no ${what} line:\n${text}`);
  return match.slice(1).map(Number);
};

/** H2loadWindow is one h2load run of a fixed number of calls. */
export interface H2loadWindow {
  calls: number;
  /** elapsedMs runs from the first call's start to the last call's end (h2load's log, so start-up is not in it). */
  elapsedMs: number;
  /** histogram holds every call's latency in microseconds. */
  histogram: Histogram;
  /** clientCpuUs is h2load's own CPU time (user + system), from the orchestrator's reaped children. */
  clientCpuUs: number | undefined;
  /** problems are failed calls, and calls whose answer was not the expected message (a gRPC error). */
  problems: string[];
}

/**
 * h2load sends `requests` calls of the body in bodyFile to url over one
 * connection with `inFlight` streams at once, and reads the per-call log.
 * answerBytes is the framed answer every call must carry (5 bytes of prefix
 * and the message): a window whose DATA bytes are not calls × answerBytes
 * had calls answered otherwise, whatever their HTTP status.
 */
export async function h2load(
  url: string,
  bodyFile: string,
  options: { requests: number; inFlight: number; logFile: string; answerBytes: number },
): Promise<H2loadWindow> {
  const { requests, inFlight, logFile, answerBytes } = options;
  rmSync(logFile, { force: true }); // h2load appends to it
  const cpu = new CpuTime(process.pid, true);
  const out = await run("h2load", [
    ...["-n", String(requests), "-c", "1", "-t", "1", "-m", String(inFlight)],
    ...["-d", bodyFile, ...grpcHeaders, `--log-file=${logFile}`, url],
  ]);
  const clientCpuUs = cpu.stop();
  const [, , done, succeeded, failed, errored, timeout] = count(
    out,
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
    "requests",
  );
  const [ok] = count(out, /status codes: (\d+) 2xx/, "status codes");
  const [data] = count(out, /traffic: .*\((\d+)\) data/, "traffic");
  const problems: string[] = [];
  if (done !== requests || succeeded !== requests || failed! + errored! + timeout! > 0 || ok !== requests) {
    problems.push(
      `h2load: ${requests} requests, ${done} done, ${succeeded} succeeded, ${failed} failed, ${errored} errored, ` +
        `${timeout} timed out, ${ok} answered 2xx`,
    );
  }
  if (data !== requests * answerBytes) {
    problems.push(
      `h2load: ${data} bytes of messages for ${requests} calls, not ${requests} × ${answerBytes}: ` +
        `about ${requests - Math.floor(data! / answerBytes)} calls were answered with a gRPC error (HTTP 200, no message)`,
    );
  }
  const histogram = newHistogram();
  let first = Infinity;
  let last = 0;
  let logged = 0;
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    const [start, status, elapsed] = line.split("\t").map(Number);
    if (start === undefined || status === undefined || elapsed === undefined || Number.isNaN(elapsed)) continue;
    logged++;
    if (status !== 200) continue;
    histogram.recordValue(Math.max(1, elapsed));
    first = Math.min(first, start);
    last = Math.max(last, start + elapsed);
  }
  if (logged !== requests) problems.push(`h2load logged ${logged} calls, not ${requests}`);
  return { calls: histogram.totalCount, elapsedMs: (last - first) / 1000, histogram, clientCpuUs, problems };
}

/** h2loadRate warms a target up for durationMs with h2load and returns the calls/s it saw. */
export async function h2loadRate(url: string, bodyFile: string, inFlight: number, durationMs: number): Promise<number> {
  const out = await run("h2load", [
    ...["-D", `${Math.max(1, Math.round(durationMs))}ms`, "-c", "1", "-t", "1", "-m", String(inFlight)],
    ...["-d", bodyFile, ...grpcHeaders, url],
  ]);
  const [rate] = count(out, /finished in [\d.]+\w*, ([\d.]+) req\/s/, "finished");
  return rate!;
}

/**
 * grpcAnswer sends the body once with nghttp and returns what the trailers
 * and DATA frames said: h2load shows neither.
 */
export async function grpcAnswer(
  url: string,
  bodyFile: string,
): Promise<{ status: string | undefined; message: string | undefined; dataBytes: number }> {
  const out = await run("nghttp", ["-v", "-n", "-d", bodyFile, ...grpcHeaders, url]);
  const header = (name: string) => new RegExp(`recv \\(stream_id=\\d+\\) ${name}: (.*)`).exec(out)?.[1]?.trim();
  const dataBytes = [...out.matchAll(/recv DATA frame <length=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  return { status: header("grpc-status"), message: header("grpc-message"), dataBytes };
}

/**
 * grpcBody sends the body once with nghttp and returns the DATA it received:
 * the framed answer message(s), to compare byte for byte.
 */
export function grpcBody(url: string, bodyFile: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    execFile("nghttp", ["-d", bodyFile, ...grpcHeaders, url], { encoding: "buffer" }, (error, stdout) =>
      error ? reject(new Error(`nghttp failed: ${error.message}`)) : resolve(stdout),
    ),
  );
}
