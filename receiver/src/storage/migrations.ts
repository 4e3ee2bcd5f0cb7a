// Versioned schema: numbered migrations, each applied once in a transaction with its row in
// schema_migrations, so a restart (or two receivers starting at once on one PostgreSQL) applies
// nothing twice. Only append to this list; never edit a migration that shipped.
//
// Types that both databases read the same: TEXT, INTEGER, BIGINT (times in ms since the epoch,
// as SQLite has no timestamp type); JSON is kept as TEXT.

import type { Driver } from './driver.js';

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
      `CREATE TABLE deliveries (
        delivery_id TEXT PRIMARY KEY,
        server TEXT NOT NULL,
        callback_id TEXT NOT NULL,
        received_at BIGINT NOT NULL
      )`,
      'CREATE INDEX deliveries_received ON deliveries (received_at)',
    ],
  },
];

/** Applies the migrations not yet applied; returns their versions. */
export async function migrate(db: Driver, now = Date.now()): Promise<number[]> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await db.transaction(async (tx) => {
      // PostgreSQL: a second receiver starting now waits here, then finds the row.
      if (db.dialect === 'postgres') await tx.run('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      if ((await tx.all('SELECT version FROM schema_migrations WHERE version = ?', [m.version])).length > 0) return false;
      for (const s of m.statements) await tx.run(s);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, now]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}
