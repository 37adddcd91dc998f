import type { FromServer, ToServer } from "./protocol.js";

/** ChildOptions is what an implementation's process exposes to the orchestrator. */
export interface ChildOptions {
  port: number;
  /** statements is the number of SQL statements sent so far. */
  statements: () => number;
  /** canned receives the echo's answers for one method, and how many times a stream replays them. */
  canned?: (path: string, responses: Buffer[], repeat: number) => void;
  stop: () => Promise<void>;
}

const send = (message: FromServer) => process.send?.(message);

/**
 * answerOrchestrator announces the listening port over IPC and answers the
 * orchestrator's questions; the process stops when asked or when the
 * orchestrator goes away, so none outlives a run.
 */
export function answerOrchestrator(options: ChildOptions): void {
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= options.stop().finally(() => process.exit(0)));
  process.on("message", (message: ToServer) => {
    if (message.type === "stats") send({ type: "stats", id: message.id, statements: options.statements() });
    if (message.type === "canned") {
      options.canned?.(
        message.path,
        message.responses.map((r) => Buffer.from(r, "base64")),
        message.repeat,
      );
      send({ type: "ack", id: message.id });
    }
    if (message.type === "stop") void stop();
  });
  process.on("disconnect", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => {}); // a terminal's Ctrl-C reaches the whole group: the orchestrator stops us
  send({ type: "ready", port: options.port });
}
