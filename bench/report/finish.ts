import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** problemOf records a bench's failure (its stack) among its problems and stands for a report not made. */
export function problemOf(problems: string[]): (error: unknown) => string {
  return (error) => {
    problems.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return "";
  };
}

/**
 * finish ends a bench script that writes one report: a report ("" for none)
 * is printed and written to outDir/file, every problem goes to stderr, and
 * the process exits 1 if there was any (never for its timings).
 */
export function finish(
  report: string,
  problems: string[],
  where: { root: string; outDir: string; file: string },
): never {
  if (report !== "") {
    const file = path.join(where.outDir, where.file);
    console.log(`\n${report}`);
    mkdirSync(where.outDir, { recursive: true });
    writeFileSync(file, `${report}\n`);
    console.log(`bench: wrote ${path.relative(where.root, file)}`);
  }
  for (const problem of problems) console.error(`bench: ${problem}`);
  process.exit(problems.length > 0 ? 1 : 0);
}
