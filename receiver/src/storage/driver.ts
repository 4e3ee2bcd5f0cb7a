// One interface over the two databases: the same SQL (written with `?` placeholders, numbered
// for PostgreSQL by its driver) and the same schema run on both. A driver only knows how to run
// a statement and a transaction; what the receiver stores is store.ts.

export type Row = Record<string, unknown>;

export interface Tx {
  /** The number of rows the statement changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  all(sql: string, params?: unknown[]): Promise<Row[]>;
}

export interface Driver extends Tx {
  readonly dialect: 'sqlite' | 'postgres';
  /** What names a row for a bounded DELETE (SQLite's rowid, PostgreSQL's ctid). */
  readonly rowId: string;
  /** `fn` in one transaction that holds the write lock: committed once it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Where it stores, without any password (for the log). */
  readonly shown: string;
  close(): Promise<void>;
}

/** `sqlite:PATH` or `postgres://…`: the driver is loaded only when used. */
export async function openDriver(url: string): Promise<Driver> {
  if (url.startsWith('sqlite:')) {
    const { openSqlite } = await import('./sqlite.js');
    return openSqlite(url.slice('sqlite:'.length));
  }
  const { openPostgres } = await import('./postgres.js');
  return openPostgres(url);
}
