// SQLite through node:sqlite (Node 22.13+; no native addon to build or to match to the Node
// version). WAL, so readers never wait for the writer, and synchronous=FULL: the WAL is fsynced
// at every commit, so a callback answered 2xx survives a power cut, not just a crash (NORMAL
// would lose the last commits on power loss; the receiver's group commit, store.ts, keeps the
// cost of FULL to one fsync per batch). One connection, its transactions one after the other.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type SqlValue, type StatementSync } from 'node:sqlite';
import type { Driver, Row, Tx } from './driver.js';

export function openSqlite(path: string): Driver {
  const file = resolve(path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(file, { timeout: 5000 });
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;');
  const statements = new Map<string, StatementSync>();
  const prepared = (sql: string): StatementSync => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const params = (p: unknown[]): SqlValue[] => p.map((v) => (v === undefined ? null : typeof v === 'boolean' ? Number(v) : (v as SqlValue)));
  const tx: Tx = {
    run: async (sql, p = []) => Number(prepared(sql).run(...params(p)).changes),
    all: async (sql, p = []) => prepared(sql).all(...params(p)) as Row[],
  };
  let tail: Promise<unknown> = Promise.resolve();
  // One connection: a statement of another request between two of a transaction's awaits
  // would join it. Everything goes through this queue.
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = tail.then(fn, fn);
    tail = next.catch(() => {});
    return next;
  };
  return {
    dialect: 'sqlite',
    rowId: 'rowid',
    shown: `sqlite:${file}`,
    run: (sql, p) => serial(() => tx.run(sql, p)),
    all: (sql, p) => serial(() => tx.all(sql, p)),
    transaction: (fn) =>
      serial(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(tx);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          db.exec('ROLLBACK');
          throw err;
        }
      }),
    close: () => serial(async () => db.close()),
  };
}
