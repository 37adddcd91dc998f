/** ToServer is what the orchestrator asks an implementation's process over IPC. */
export type ToServer =
  | { type: "stats"; id: number }
  | { type: "canned"; id: number; path: string; responses: string[]; repeat: number }
  | { type: "stop"; id: number };

/** FromServer is what an implementation's process tells the orchestrator. */
export type FromServer =
  { type: "ready"; port: number } | { type: "stats"; id: number; statements: number } | { type: "ack"; id: number };
