import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";

const root = path.resolve(import.meta.dirname, "..");

/** LogLine is one JSON line the service wrote on stdout. */
export type LogLine = Record<string, unknown> & { msg?: string };

/** ServiceProcess is `node --import tsx src/main.ts` running as a child, as in production. */
export interface ServiceProcess {
  child: ChildProcess;
  /** address is where it listens, read from its "listening" log line. */
  address: string;
  lines: LogLine[];
  /** exited settles with the exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** waitForLine resolves with the first log line (seen or to come) that matches, or fails after timeoutMs. */
  waitForLine(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** stderr is what it wrote to standard error so far. */
  stderr(): string;
  /** kill ends it with SIGKILL if it still runs (test clean-up). */
  kill(): void;
}

// Variables of the developer's shell that would change what the service does.
const unset = new Set([
  "METRICS_ADDRESS",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "TLS_CERT",
  "TLS_KEY",
  "TLS_CLIENT_CA",
  "AUTH_TOKENS_FILE",
]);

/** startServiceProcess starts the service on 127.0.0.1:0 with env added and waits until it listens. */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !unset.has(k)));
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: root,
    env: { ...base, LOG_LEVEL: "info", GRPC_ADDRESS: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on("line", (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      lines.push({ msg: text });
    }
    for (const wake of waiters) wake();
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      resolve({ code, signal });
      for (const wake of waiters) wake();
    }),
  );
  const waitForLine = (match: (line: LogLine) => boolean, timeoutMs = 30_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found !== undefined) return done(() => resolve(found));
        if (child.exitCode !== null || child.signalCode !== null) {
          const error = new Error(`the service exited first; stderr: ${stderr}; stdout: ${JSON.stringify(lines)}`);
          done(() => reject(Object.assign(error, { lines })));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no such log line in ${timeoutMs} ms: ${JSON.stringify(lines)} ${stderr}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  try {
    const listening = await waitForLine((l) => typeof l.msg === "string" && l.msg.startsWith("blog-service listening"));
    return { child, address: String(listening.address), lines, exited, waitForLine, kill, stderr: () => stderr };
  } catch (error) {
    kill();
    throw error;
  }
}
