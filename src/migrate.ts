import { runMigrate } from "./cli/migrate.js";

// `npm run migrate [up|down|status]`, the same as `blog-service migrate`.
process.exitCode = await runMigrate(process.argv.slice(2));
