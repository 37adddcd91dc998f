import { runCli } from "./run.js";

// The `blog-service` command (bin/blog-service.js loads this file).
const code = await runCli(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
