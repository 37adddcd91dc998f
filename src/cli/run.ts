import { runMigrate, migrateUsage } from "./migrate.js";
import { runSeed, seedUsage } from "./seed.js";

const usage = `usage: blog-service <command>

  serve
      run the gRPC service (what \`npm start\` runs)
  ${migrateUsage}
      apply pending migrations (default), revert the last one, or list them; prints JSON
  ${seedUsage}
      bulk-load fake users with M posts each (default 0), B users a transaction (default 1000)

Configuration comes from the environment; see the README.`;

/**
 * runCli runs one `blog-service` command and returns its exit code, or
 * undefined for `serve`, which keeps running until a signal stops it.
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  const [command, ...args] = argv;
  switch (command) {
    case "serve":
      if (args.length > 0) break;
      await import("../main.js"); // main.ts is the service: it listens and handles signals itself
      return undefined;
    case "migrate":
      return runMigrate(args);
    case "seed":
      return runSeed(args);
    case "help":
    case "--help":
    case "-h":
      console.log(usage);
      return 0;
  }
  console.error(command === undefined ? usage : `unknown command "${argv.join(" ")}"\n\n${usage}`);
  return 2;
}
