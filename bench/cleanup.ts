/** Cleanup undoes what a bench set up (database, servers, load generator), once however the bench ends. */
export interface Cleanup {
  /** steps are what to undo, run last first; startAll and the bench push theirs as they go. */
  steps: (() => Promise<unknown>)[];
  /** run runs the steps on its first call; a later one (the normal end after SIGINT, or SIGINT during it) waits for that run. */
  run(): Promise<void>;
}

/**
 * cleanupOnInterrupt returns a bench's cleanup and runs it on SIGINT before
 * exiting with 130. A failing step is logged and the next still runs, so one
 * server that will not stop does not leave the database behind.
 */
export function cleanupOnInterrupt(): Cleanup {
  const steps: (() => Promise<unknown>)[] = [];
  let cleaning: Promise<void> | undefined;
  const run = () =>
    (cleaning ??= (async () => {
      for (const step of steps.toReversed()) await step().catch((error: unknown) => console.error("cleanup:", error));
    })());
  process.once("SIGINT", () => {
    console.error("\ninterrupted: stopping servers and dropping the database");
    void run().finally(() => process.exit(130));
  });
  return { steps, run };
}
