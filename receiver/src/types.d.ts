// The few declarations the receiver needs that @types/node 20 and the pg package do not carry:
// node:sqlite (Node 22.13+; the receiver runs on a Node that has it, see bin/bootstrap-receiver)
// and the part of node-postgres it uses.

declare module 'node:sqlite' {
  export type SqlValue = null | number | bigint | string | Uint8Array;
  export interface StatementSync {
    run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
    all(...params: SqlValue[]): Record<string, SqlValue>[];
    get(...params: SqlValue[]): Record<string, SqlValue> | undefined;
  }
  export class DatabaseSync {
    constructor(path: string, options?: { open?: boolean; timeout?: number });
    exec(sql: string): void;
    prepare(sql: string): StatementSync;
    close(): void;
  }
}

declare module 'pg' {
  export interface QueryResult {
    rows: Record<string, unknown>[];
    rowCount: number | null;
  }
  export interface PoolClient {
    query(text: string, values?: unknown[]): Promise<QueryResult>;
    release(err?: Error | boolean): void;
  }
  export class Pool {
    constructor(config: { connectionString: string; max?: number; connectionTimeoutMillis?: number; statement_timeout?: number });
    connect(): Promise<PoolClient>;
    query(text: string, values?: unknown[]): Promise<QueryResult>;
    end(): Promise<void>;
    on(event: 'error', listener: (err: Error) => void): this;
  }
  const pg: { Pool: typeof Pool };
  export default pg;
}
