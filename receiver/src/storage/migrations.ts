// Versioned schema: numbered migrations, each applied once in a transaction with its row in
// schema_migrations, so a restart (or two receivers starting at once on one PostgreSQL) applies
// nothing twice. Only append to this list; never edit a migration that shipped.
//
// Types that both databases read the same: TEXT, INTEGER, BIGINT (times in ms since the epoch,
// as SQLite has no timestamp type); JSON is kept as TEXT.

import type { Driver, Tx } from './driver.js';

export const migrations: { version: number; name: string; statements: string[] }[] = [
  {
    version: 1,
    name: 'servers, callbacks, deliveries',
    statements: [
      `CREATE TABLE servers (
        server TEXT PRIMARY KEY,
        last_report_at BIGINT NOT NULL,
        last_finished_at TEXT NOT NULL,
        last_kind TEXT NOT NULL,
        last_status TEXT NOT NULL,
        last_label TEXT,
        mode TEXT NOT NULL,
        products TEXT NOT NULL,
        last_run TEXT,
        last_run_id TEXT,
        last_run_changed INTEGER NOT NULL DEFAULT 0,
        last_success_at TEXT,
        failed_runs_since_success INTEGER NOT NULL DEFAULT 0,
        disabled TEXT,
        drifted INTEGER NOT NULL DEFAULT 0,
        healthy INTEGER
      )`,
      `CREATE TABLE callbacks (
        server TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        status TEXT NOT NULL,
        label TEXT,
        exit_code INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        duration_ms BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (server, id)
      )`,
      'CREATE INDEX callbacks_received ON callbacks (received_at)',
      'CREATE INDEX callbacks_server_received ON callbacks (server, received_at)',
      // Per server: a run id is a second and 24 random bits, unique on its server, not across a fleet.
      `CREATE TABLE deliveries (
        server TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        callback_id TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (server, delivery_id)
      )`,
      'CREATE INDEX deliveries_received ON deliveries (received_at)',
    ],
  },
];

// PostgreSQL: one lock for every receiver migrating this database. Even CREATE TABLE IF NOT
// EXISTS fails in one of two sessions that run it at once (a unique violation in pg_type).
const migrationLock = 'SELECT pg_advisory_xact_lock(7406290411)';

/** Applies the migrations not yet applied; returns their versions. */
export async function migrate(db: Driver, now = Date.now()): Promise<number[]> {
  const locked = async <T>(fn: (tx: Tx) => Promise<T>) =>
    db.transaction(async (tx) => {
      // A second receiver starting now waits here, then finds the table and the rows.
      if (db.dialect === 'postgres') await tx.all(migrationLock);
      return fn(tx);
    });
  await locked((tx) => tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)'));
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await locked(async (tx) => {
      if ((await tx.all('SELECT version FROM schema_migrations WHERE version = ?', [m.version])).length > 0) return false;
      for (const s of m.statements) await tx.run(s);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, now]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}
