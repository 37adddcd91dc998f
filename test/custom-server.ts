import type { Knex } from "knex";
import { pino } from "pino";
import type { Logger } from "pino";
import { createDatabase } from "../src/db/knex.js";
import { migrateLatest } from "../src/db/migrator.js";
import { createServer } from "../src/server.js";
import type { BlogServer, ServerDeps } from "../src/server.js";
import { createTestDatabase } from "./helpers.js";

/** CustomServer is a real server built with chosen deps (TLS, tokens, limits) over a fresh database. */
export interface CustomServer {
  db: Knex;
  url: string;
  server: BlogServer;
  port: number;
  /** logs holds every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** startCustomServer is startTestEnv with the server's optional deps chosen by the test and its logs kept. */
export async function startCustomServer(deps: Omit<ServerDeps, "db" | "log"> = {}): Promise<CustomServer> {
  const database = await createTestDatabase();
  const logs: Record<string, unknown>[] = [];
  const log: Logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const db = createDatabase({ url: database.url, poolMax: 5, log });
  await migrateLatest(db);
  const server = createServer({ db, log, ...deps });
  const port = await server.listen("127.0.0.1:0");
  return {
    db,
    url: database.url,
    server,
    port,
    logs,
    close: async () => {
      await server.shutdown(1000);
      await db.destroy();
      await database.drop();
    },
  };
}
