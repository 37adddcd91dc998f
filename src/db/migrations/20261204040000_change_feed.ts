import type { Knex } from "knex";

// The change feed of WatchUsers and WatchPosts (src/db/change-feed.ts explains
// the order and why it has no gap):
// - changes: one row per changed row of users or posts, written by row
//   triggers, so every write path is captured (batched statements, raw SQL,
//   the ON DELETE CASCADE of posts); a rolled-back transaction leaves none.
//   data is the row as written, with its numbers as JSON strings (int8 ids
//   would lose precision as JSON numbers in JavaScript); NULL for a deletion.
// - change_commits: one row per committing transaction that wrote changes,
//   numbered (seq) while it holds a transaction-level advisory lock taken in a
//   deferred trigger, just before it commits: seq order is commit order.
// - change_feed: how far retention has pruned (pruned_through, a seq).

/**
 * recordChangeFunction is the row trigger function of this migration; the
 * statement triggers of 20261204140000 replaced it, and their down() puts it
 * back.
 */
export const recordChangeFunction = `
    CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      written jsonb;
    BEGIN
      IF TG_OP = 'DELETE' THEN
        written := to_jsonb(OLD);
      ELSE
        written := to_jsonb(NEW);
      END IF;
      INSERT INTO changes (resource, operation, resource_id, user_id, data)
      VALUES (
        TG_ARGV[0],
        lower(TG_OP),
        (written->>'id')::bigint,
        (written->>TG_ARGV[1])::bigint,
        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE (
          SELECT jsonb_object_agg(key, CASE jsonb_typeof(value) WHEN 'number' THEN to_jsonb(value #>> '{}') ELSE value END)
          FROM jsonb_each(written)
        ) END
      );
      RETURN NULL;
    END $$;
`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE changes (
      xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
      id bigint GENERATED ALWAYS AS IDENTITY,
      resource text NOT NULL CHECK (resource IN ('user', 'post')),
      operation text NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
      resource_id bigint NOT NULL,
      user_id bigint NOT NULL,
      data jsonb,
      PRIMARY KEY (xid, id)
    );
    CREATE TABLE change_commits (
      seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      xid xid8 NOT NULL UNIQUE,
      commit_time timestamptz(3) NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE change_feed (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      pruned_through bigint NOT NULL DEFAULT 0
    );
    INSERT INTO change_feed DEFAULT VALUES;

    ${recordChangeFunction}

    CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON users
      FOR EACH ROW EXECUTE FUNCTION record_change('user', 'id');
    CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON posts
      FOR EACH ROW EXECUTE FUNCTION record_change('post', 'user_id');

    -- Runs at commit, once per transaction that wrote changes (the later rows
    -- of the same transaction find the setting made here). The lock is held
    -- until the transaction has committed and is visible, so the next
    -- transaction takes the next seq only after this one is visible.
    CREATE FUNCTION sequence_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF coalesce(current_setting('blog.change_commit', true), '') = '' THEN
        PERFORM pg_advisory_xact_lock(1651273575, 1);
        INSERT INTO change_commits (xid) VALUES (pg_current_xact_id());
        PERFORM set_config('blog.change_commit', 'on', true);
        PERFORM pg_notify('blog_changes', '');
      END IF;
      RETURN NULL;
    END $$;

    CREATE CONSTRAINT TRIGGER sequence_commit AFTER INSERT ON changes
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sequence_commit();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER record_change ON posts;
    DROP TRIGGER record_change ON users;
    DROP TABLE changes, change_commits, change_feed;
    DROP FUNCTION record_change(), sequence_commit();
  `);
}
