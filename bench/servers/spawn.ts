import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import type { FromServer, ToServer } from "./protocol.js";

/** RunningServer is an implementation's process as the orchestrator drives it. */
export interface RunningServer {
  readonly name: string;
  readonly pid: number;
  readonly address: string;
  /** statements asks the process how many SQL statements it has sent so far. */
  statements(): Promise<number>;
  /** setCanned hands the echo its answers for one method; a stream replays them `repeat` times. */
  setCanned(path: string, responses: Buffer[], repeat: number): Promise<void>;
  stop(): Promise<void>;
}

type Request = { type: "stats" } | { type: "canned"; path: string; responses: string[]; repeat: number };

/** npmStartFlags are the node flags `npm start` runs the service with (package.json's start script). */
export function npmStartFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    scripts: { start: string };
  };
  return pkg.scripts.start.split(" ").filter((arg) => arg.startsWith("--") && arg !== "--import");
}

/**
 * startServer forks `node --import tsx entry` (plus nodeArgs) with env and
 * waits until it listens; stdout goes to stdoutFd (the service's log file) or
 * is dropped.
 */
export async function startServer(
  name: string,
  entry: URL,
  options: { env: NodeJS.ProcessEnv; nodeArgs: string[]; stdoutFd?: number },
): Promise<RunningServer> {
  const { env, nodeArgs, stdoutFd } = options;
  const child: ChildProcess = fork(entry, [], {
    // The service runs with npm start's node flags wherever a bench starts it: as deployed.
    execArgv: ["--import", "tsx", ...(name === "service" ? npmStartFlags() : []), ...nodeArgs],
    env: { ...process.env, ...env },
    stdio: ["ignore", stdoutFd ?? "ignore", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.on("message", (message: FromServer) => message.type === "ready" && resolve(message.port));
    void exited.then(() => reject(new Error(`${name} exited before listening (its errors are above)`)));
  });
  let nextId = 0;
  const pending = new Map<number, { resolve: (message: FromServer) => void; gone: () => void }>();
  child.on("message", (message: FromServer) => {
    if (message.type === "ready") return;
    pending.get(message.id)?.resolve(message);
    pending.delete(message.id);
  });
  void exited.then(() => {
    for (const { gone } of pending.values()) gone();
  });
  const ask = (request: Request) =>
    new Promise<FromServer>((resolve, reject) => {
      const id = nextId++;
      const gone = () => reject(new Error(`the ${name} process exited during the run (its errors are above)`));
      if (!child.connected) return gone();
      pending.set(id, { resolve, gone });
      child.send({ ...request, id } satisfies ToServer, (error) => error && gone());
    });
  return {
    name,
    pid: child.pid!,
    address: `127.0.0.1:${port}`,
    statements: async () => {
      const answer = await ask({ type: "stats" });
      return answer.type === "stats" ? answer.statements : 0;
    },
    setCanned: async (path, responses, repeat) => {
      await ask({ type: "canned", path, responses: responses.map((r) => r.toString("base64")), repeat });
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && child.connected) {
        child.send({ type: "stop", id: nextId++ } satisfies ToServer);
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
