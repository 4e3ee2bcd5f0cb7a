// What the receiver stores and reads, in SQL that both databases run. Callbacks are recorded by
// group commit: those that arrive while a transaction runs wait for the next one, which takes
// them all, so the cost of a durable commit (an fsync) is paid once per batch, not per callback;
// each caller is answered only after the commit that holds its callback. node:sqlite's commit
// blocks the event loop: between two transactions the loop turns once (setImmediate), so the
// requests that arrived meanwhile are read and join the next batch. PostgreSQL takes several
// batches at once (Driver.writers), each on its own connection.

import { applyCallback, runView, type CallbackBody, type ServerRecord } from '../fleet.js';
import type { RunView } from '../view.js';
import type { Driver, Row, Tx } from './driver.js';

export type Outcome = 'stored' | 'duplicate' | 'expired';

interface Pending {
  deliveryId: string;
  body: CallbackBody;
  raw: string;
  receivedAt: number;
  /** --retain's horizon (ms): a callback that finished before it is expired once a later one is stored. */
  expireBefore: number | null;
  resolve(o: Outcome): void;
  reject(e: unknown): void;
}

/** At most this many bytes of stored bodies read for one server page or API answer. */
export const runsBudget = 8 * 1024 * 1024;

/** At most this many callbacks in one transaction (a bounded commit, a bounded rollback). */
const maxBatch = 500;

export class Store {
  private queue: Pending[] = [];
  private running = 0;

  constructor(readonly db: Driver) {}

  /** Resolves once the callback is committed (or was already, under this delivery id, or is expired: see recordOne). */
  record(deliveryId: string, body: CallbackBody, raw: string, receivedAt = Date.now(), expireBefore: number | null = null): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ deliveryId, body, raw, receivedAt, expireBefore, resolve, reject });
      if (this.running < this.db.writers) {
        this.running++;
        // After this turn's I/O: the other requests read in it join the same transaction.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      for (; this.queue.length > 0; await new Promise((r) => setImmediate(r))) {
        const batch = this.queue.splice(0, maxBatch);
        let inside = false;
        try {
          const outcomes = await this.db.transaction((tx) => recordAll(tx, this.db.dialect, batch).catch((e: unknown) => ((inside = true), Promise.reject(e))));
          batch.forEach((p, i) => p.resolve(outcomes[i]!));
        } catch (err) {
          // One bad callback must not fail its neighbours: each on its own, each answered. Not
          // when the transaction itself failed (SQLite busy past its timeout, a lost connection):
          // each retry would wait as long again, with SQLite's event loop blocked meanwhile.
          if (!inside) batch.forEach((p) => p.reject(err));
          else for (const p of batch) await this.db.transaction((tx) => recordAll(tx, this.db.dialect, [p])).then(([o]) => p.resolve(o!), p.reject);
        }
      }
    } finally {
      this.running--;
    }
  }

  async servers(): Promise<ServerRecord[]> {
    return (await this.db.all('SELECT * FROM servers ORDER BY server')).map(readServer);
  }

  async server(name: string): Promise<ServerRecord | null> {
    const rows = await this.db.all('SELECT * FROM servers WHERE server = ?', [name]);
    return rows[0] ? readServer(rows[0]) : null;
  }

  /**
   * A server's stored callbacks, newest first: up to `limit`, and no more than runsBudget bytes
   * of bodies once the newest is in (a server could have stored a thousand 1 MiB bodies: one
   * `?runs=1000` would then hold a GiB in memory).
   */
  async runs(name: string, limit: number): Promise<RunView[]> {
    const order = 'FROM callbacks WHERE server = ? ORDER BY received_at DESC, id DESC LIMIT ?';
    let n = 0;
    for (let bytes = 0, sizes = await this.db.all(`SELECT length(body) AS size ${order}`, [name, limit]); n < sizes.length; n++) {
      bytes += Number(sizes[n]!['size']);
      if (n > 0 && bytes > runsBudget) break;
    }
    const rows = await this.db.all(`SELECT body, received_at ${order}`, [name, Math.max(n, 1)]);
    return rows.map((r) => runView(JSON.parse(String(r['body'])) as CallbackBody, Number(r['received_at'])));
  }

  /**
   * Deletes up to `limit` callbacks received before `before`, never a server's last run (its
   * latest state stays whole), and deliveries as old. One short statement: writes wait for it at
   * most that long. Returns how many callbacks and how many deliveries went (each table has its
   * own backlog: duplicates and replays add deliveries only).
   */
  async pruneBatch(before: number, limit: number): Promise<{ callbacks: number; deliveries: number }> {
    const id = this.db.rowId;
    const n = await this.db.run(
      `DELETE FROM callbacks WHERE ${id} IN (SELECT c.${id} FROM callbacks c WHERE c.received_at < ? AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.server = c.server AND s.last_run_id = c.id) LIMIT ?)`,
      [before, limit],
    );
    const d = await this.db.run(`DELETE FROM deliveries WHERE ${id} IN (SELECT ${id} FROM deliveries WHERE received_at < ? LIMIT ?)`, [before, limit]);
    return { callbacks: n, deliveries: d };
  }
}

async function recordAll(tx: Tx, dialect: Driver['dialect'], batch: Pending[]): Promise<Outcome[]> {
  // One order for the locks of every batch (code units: localeCompare may call two names equal).
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const order = batch.map((p, i) => i).sort((a, b) => byName(batch[a]!.body.server, batch[b]!.body.server));
  // Two transactions at once (PostgreSQL: several writers, several receivers) must not both
  // compute a server's state from the same row, nor from no row yet: a lock on its name until
  // commit, taken for every server of the batch, in that order, before any row is written (taken
  // after a row insert, another batch waiting on that row while holding the lock deadlocks).
  // SQLite has one writer at a time (BEGIN IMMEDIATE).
  if (dialect === 'postgres') {
    for (const server of [...new Set(batch.map((p) => p.body.server))].sort(byName)) await tx.all('SELECT pg_advisory_xact_lock(hashtext(?))', [server]);
  }
  const outcomes: Outcome[] = new Array(batch.length);
  for (const i of order) outcomes[i] = await recordOne(tx, batch[i]!);
  return outcomes;
}

async function recordOne(tx: Tx, p: Pending): Promise<Outcome> {
  const b = p.body;
  // Finished before the history kept (--retain), and the server has a later report: all it would
  // add is what pruning removes; its delivery record may be pruned too, so a replay of it would
  // look new. Not stored. One that would be the server's latest (an agent whose clock is behind,
  // or back from a long outage) is stored as usual.
  if (p.expireBefore !== null && Date.parse(b.finished_at) < p.expireBefore) {
    const later = await tx.all('SELECT 1 FROM servers WHERE server = ? AND last_finished_at > ?', [b.server, b.finished_at]);
    if (later.length > 0) return 'expired';
  }
  const fresh = await tx.run('INSERT INTO deliveries (server, delivery_id, callback_id, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (server, delivery_id) DO NOTHING', [b.server, p.deliveryId, b.id, p.receivedAt]);
  if (fresh === 0) return 'duplicate';
  // A paused run's final callback has the run's id and a new delivery: the row is updated, and
  // only by a newer callback than the one it holds. The delivery id is not signed: a stored
  // callback sent again under a new one (a replay) is a duplicate too, and touches no state.
  const changed = await tx.run(
    `INSERT INTO callbacks (server, id, kind, action, status, label, exit_code, started_at, finished_at, duration_ms, received_at, body)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (server, id) DO UPDATE SET kind = excluded.kind, action = excluded.action, status = excluded.status, label = excluded.label,
       exit_code = excluded.exit_code, started_at = excluded.started_at, finished_at = excluded.finished_at, duration_ms = excluded.duration_ms,
       received_at = excluded.received_at, body = excluded.body
     WHERE callbacks.finished_at < excluded.finished_at`,
    [b.server, b.id, b.kind, b.action, b.status, b.label ?? null, b.exit_code, b.started_at, b.finished_at, b.duration_ms, p.receivedAt, p.raw],
  );
  if (changed === 0) return 'duplicate';
  const rows = await tx.all('SELECT * FROM servers WHERE server = ?', [b.server]);
  const next = applyCallback(rows[0] ? readServer(rows[0]) : null, b, p.receivedAt);
  await tx.run(
    `INSERT INTO servers (server, last_report_at, last_finished_at, last_kind, last_status, last_label, mode, products, last_run, last_run_id,
       last_run_changed, last_success_at, failed_runs_since_success, disabled, drifted, healthy)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (server) DO UPDATE SET last_report_at = excluded.last_report_at, last_finished_at = excluded.last_finished_at,
       last_kind = excluded.last_kind, last_status = excluded.last_status, last_label = excluded.last_label, mode = excluded.mode,
       products = excluded.products, last_run = excluded.last_run, last_run_id = excluded.last_run_id, last_run_changed = excluded.last_run_changed,
       last_success_at = excluded.last_success_at, failed_runs_since_success = excluded.failed_runs_since_success,
       disabled = excluded.disabled, drifted = excluded.drifted, healthy = excluded.healthy`,
    writeServer(next),
  );
  return 'stored';
}

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));
const parsed = <T>(v: unknown): T | null => (v === null || v === undefined ? null : (JSON.parse(String(v)) as T));

function writeServer(r: ServerRecord): unknown[] {
  return [
    r.server, r.last_report_at, r.last_finished_at, r.last_kind, r.last_status, r.last_label, r.mode, JSON.stringify(r.products),
    json(r.last_run), r.last_run?.id ?? null, r.last_run_changed, r.last_success_at, r.failed_runs_since_success,
    json(r.disabled), r.drifted ? 1 : 0, r.healthy === null ? null : r.healthy ? 1 : 0,
  ];
}

function readServer(row: Row): ServerRecord {
  return {
    server: String(row['server']),
    last_report_at: Number(row['last_report_at']),
    last_finished_at: String(row['last_finished_at']),
    last_kind: row['last_kind'] as ServerRecord['last_kind'],
    last_status: String(row['last_status']),
    last_label: (row['last_label'] as string | null) ?? null,
    mode: String(row['mode']),
    products: parsed<ServerRecord['products']>(row['products']) ?? {},
    last_run: parsed<ServerRecord['last_run']>(row['last_run']),
    last_run_changed: Number(row['last_run_changed']),
    last_success_at: (row['last_success_at'] as string | null) ?? null,
    failed_runs_since_success: Number(row['failed_runs_since_success']),
    disabled: parsed<ServerRecord['disabled']>(row['disabled']),
    drifted: Number(row['drifted']) === 1,
    healthy: row['healthy'] === null || row['healthy'] === undefined ? null : Number(row['healthy']) === 1,
  };
}
