import { Presets, SingleBar } from "cli-progress";

/** Progress reports how far a long job is: a bar for a person, lines for a log. */
export interface Progress {
  update(done: number, note: string): void;
  stop(summary: string): void;
}

/**
 * progress draws a cli-progress bar when stream is a terminal and otherwise
 * writes one plain line per update (CI logs, `| tee`), which a bar's carriage
 * returns would garble.
 */
export function progress(label: string, total: number, stream: NodeJS.WriteStream = process.stdout): Progress {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  if (stream.isTTY) {
    const bar = new SingleBar(
      { stream, format: `${label} [{bar}] {percentage}% | {value}/{total} | {note} | ETA {eta_formatted}` },
      Presets.shades_classic,
    );
    bar.start(total, 0, { note: "" });
    return {
      update: (done, note) => bar.update(done, { note }),
      stop: (summary) => {
        bar.stop();
        stream.write(`${summary} in ${seconds()} s\n`);
      },
    };
  }
  const percent = (done: number) => (total === 0 ? 100 : Math.floor((done / total) * 100));
  return {
    update: (done, note) => stream.write(`${label}: ${done}/${total} (${percent(done)}%), ${note}, ${seconds()} s\n`),
    stop: (summary) => stream.write(`${summary} in ${seconds()} s\n`),
  };
}
