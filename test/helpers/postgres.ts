// A private PostgreSQL cluster for a test file: Debian's binaries (the postgresql package),
// initdb into a temp dir as the unprivileged `postgres` user (initdb refuses root), started on a
// unix socket in that dir and 127.0.0.1 on a free port with trust auth (nothing else can reach
// it), stopped and removed by stop(). null when the binaries are absent (with the reason).

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './servers.js';

export interface Postgres {
  port: number;
  /** A new empty database: its URL. */
  createDatabase(name: string): string;
  /** psql -c SQL on `db`: the rows, tab-separated, one a line. */
  sql(db: string, sql: string): string;
  stop(): void;
}

/** The newest installed PostgreSQL's bin dir, or why there is none. */
export function postgresBin(): string | { missing: string } {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  return versions[0] ? join(base, versions[0], 'bin') : { missing: `no PostgreSQL server binaries in ${base}/*/bin (apt-get install postgresql)` };
}

export async function startPostgres(): Promise<Postgres | { missing: string }> {
  const bin = postgresBin();
  if (typeof bin !== 'string') return bin;
  const root = process.getuid?.() === 0;
  const as = root ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--clear-groups'] : [];
  const run = (cmd: string, args: string[], timeout = 60_000) => {
    const argv = [...as, cmd, ...args];
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  };
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-pg-'));
  if (root) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
  const data = join(dir, 'data');
  const port = await freePort();
  try {
    run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', `-k ${dir} -h 127.0.0.1 -p ${port} -c max_connections=40`, 'start'], 90_000);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const psql = (db: string, sql: string) => execFileSync(join(bin, 'psql'), ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', db, '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 30_000 });
  return {
    port,
    createDatabase: (name) => {
      psql('postgres', `CREATE DATABASE "${name}"`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    sql: psql,
    stop: () => {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
