// PostgreSQL through node-postgres (pg, pure JavaScript). The SQL is store.ts's, with `?` turned
// into $1, $2, …; BIGINT columns come back as text and store.ts reads them with Number().

import pg, { type Pool } from 'pg';
import type { Driver, Row, Tx } from './driver.js';

/** `?` → `$n` (the receiver's SQL has no `?` inside string literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export async function openPostgres(url: string): Promise<Driver> {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000 });
  // An idle connection that breaks (server restart) must not end the process: the pool drops it.
  pool.on('error', () => {});
  await pool.query('SELECT 1');
  const over = (q: { query: Pool['query'] }): Tx => ({
    run: async (sql, p = []) => (await q.query(numbered(sql), p)).rowCount ?? 0,
    all: async (sql, p = []) => (await q.query(numbered(sql), p)).rows as Row[],
  });
  const direct = over(pool);
  const u = new URL(url);
  u.password = '';
  u.username = u.username ? u.username : '';
  return {
    dialect: 'postgres',
    rowId: 'ctid',
    shown: u.toString().replace(/\?.*$/, ''),
    ...direct,
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(over(client));
        await client.query('COMMIT');
        client.release();
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        client.release(true);
        throw err;
      }
    },
    close: () => pool.end(),
  };
}
