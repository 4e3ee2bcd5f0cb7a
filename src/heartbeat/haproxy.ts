// The haproxy kind: its health through the runtime API on a unix socket (`show info` for Pid,
// Uptime and Stopping; `show stat` for proxies and servers) or through the stats page
// (`url = …;csv`). The CSV is read by its header's field names, never by position (they move
// between versions).

import { ConfigError } from '../errors.js';
import { checkHttpUrl, httpGet } from './net.js';
import type { CheckContext, CheckVerdict, HeartbeatKind, SectionReader, SpecBase } from './types.js';
import { net } from '../util/lazy.js';

export type HaproxySpec = SpecBase & {
  type: 'haproxy';
  /** The backends to judge (default: every backend with servers). */
  backends: string[] | undefined;
} & ({ socket: string; url?: undefined } | { url: string; socket?: undefined });

const maxResponseBytes = 4 * 1024 * 1024;

function parse(r: SectionReader, base: SpecBase): HaproxySpec {
  const socket = r.path('socket');
  const url = r.str('url') || undefined;
  const source = socket && !url ? { socket } : url && !socket ? { url } : null;
  if (!source) throw new ConfigError(`[${r.where}]: set exactly one of socket and url`, 'socket = /run/haproxy/admin.sock, or url = "http://127.0.0.1:8404/stats;csv"');
  if (source.url !== undefined) checkHttpUrl(r.where, source.url);
  return { ...base, type: 'haproxy', ...source, backends: r.list('backends') };
}

async function check(spec: HaproxySpec, { signal }: CheckContext): Promise<CheckVerdict> {
  let csv: string;
  let info: Record<string, string> | null = null;
  try {
    if (spec.socket !== undefined) {
      info = parseInfo(await askSocket(spec.socket, 'show info', signal));
      csv = await askSocket(spec.socket, 'show stat', signal);
    } else {
      const res = await httpGet(spec.url, signal, maxResponseBytes);
      if (res.status !== 200) return { healthy: false, detail: `stats page answered HTTP ${res.status}` };
      csv = res.body;
    }
  } catch (err) {
    return { healthy: false, detail: describeError(err, spec) };
  }
  if (info && info['Stopping'] === '1') return { healthy: false, detail: `haproxy (pid ${info['Pid'] ?? '?'}) is stopping` };
  return judge(csv, spec.backends);
}

export const haproxy: HeartbeatKind<HaproxySpec> = { keys: ['socket', 'url', 'backends'], parse, check };

/** Sends one runtime API command and reads the answer until haproxy closes the connection. */
function askSocket(path: string, command: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net().connect({ path });
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = () => socket.destroy(new Error(`no answer to '${command}' in time`));
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (err?: Error) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (d: Buffer) => {
      size += d.length;
      if (size > maxResponseBytes) socket.destroy(new Error(`answer to '${command}' is larger than ${maxResponseBytes} bytes`));
      else chunks.push(d);
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', (hadError) => {
      if (!hadError) finish();
    });
    if (signal.aborted) onAbort();
  });
}

function parseInfo(text: string): Record<string, string> {
  const info: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_]+):\s*(.*)$/.exec(line.trim());
    if (m) info[m[1]!] = m[2]!;
  }
  if (!info['Pid']) throw new Error(`'show info' did not answer as haproxy does: ${JSON.stringify(text.slice(0, 80))}`);
  return info;
}

interface StatRow {
  pxname: string;
  svname: string;
  status: string;
  check_status: string;
  act: string;
  bck: string;
}

/** Parses `show stat` CSV by its header (`# pxname,svname,...`). */
export function parseStat(csv: string): StatRow[] {
  const lines = csv.split('\n').map((l) => l.trimEnd());
  const headerLine = lines.find((l) => l.startsWith('# '));
  if (!headerLine) throw new Error(`'show stat' has no CSV header: ${JSON.stringify(csv.slice(0, 80))}`);
  const header = headerLine.slice(2).split(',');
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`'show stat' has no '${name}' column`);
    return i;
  };
  const idx = { pxname: col('pxname'), svname: col('svname'), status: col('status'), check_status: header.indexOf('check_status'), act: col('act'), bck: col('bck') };
  const rows: StatRow[] = [];
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(',');
    if (f.length < header.length - 1) throw new Error(`'show stat' row is truncated: ${JSON.stringify(line.slice(0, 80))}`);
    rows.push({ pxname: f[idx.pxname]!, svname: f[idx.svname]!, status: f[idx.status]!, check_status: idx.check_status >= 0 ? (f[idx.check_status] ?? '') : '', act: f[idx.act]!, bck: f[idx.bck]! });
  }
  return rows;
}

/**
 * Healthy when every listed backend (default: every backend with servers) is UP with at least
 * one active server UP. The detail names each unhealthy backend and server.
 */
export function judge(csv: string, wanted: string[] | undefined): CheckVerdict {
  let rows: StatRow[];
  try {
    rows = parseStat(csv);
  } catch (err) {
    return { healthy: false, detail: (err as Error).message };
  }
  const servers = rows.filter((r) => r.svname !== 'FRONTEND' && r.svname !== 'BACKEND');
  const backends = new Map(rows.filter((r) => r.svname === 'BACKEND').map((r) => [r.pxname, r]));
  const names = wanted ?? [...backends.keys()].filter((b) => servers.some((s) => s.pxname === b));
  const problems: string[] = [];
  const fine: string[] = [];
  for (const name of names) {
    const backend = backends.get(name);
    if (!backend) {
      problems.push(`backend ${name}: not found in haproxy`);
      continue;
    }
    const own = servers.filter((s) => s.pxname === name);
    const up = own.filter((s) => s.status.startsWith('UP'));
    const activeUp = up.filter((s) => s.act === '1');
    const down = own.filter((s) => !s.status.startsWith('UP'));
    const summary = `backend ${name}: ${up.length}/${own.length} servers UP`;
    // haproxy marks a check still in progress with '* ' (`* L4CON`): the status is what matters.
    const downList = down.map((s) => {
      const check = s.check_status.replace(/^\*\s*/, '');
      return `${name}/${s.svname} ${s.status}${check ? ` (${check})` : ''}`;
    });
    if (!backend.status.startsWith('UP') || activeUp.length === 0) problems.push([`${summary}${backend.status.startsWith('UP') ? '' : `, backend ${backend.status}`}`, ...downList].join('; '));
    else fine.push([summary, ...downList].join('; '));
  }
  if (names.length === 0) return { healthy: false, detail: 'haproxy has no backend with servers' };
  return problems.length ? { healthy: false, detail: [...problems, ...fine].join('; ') } : { healthy: true, detail: fine.join('; ') };
}

function describeError(err: unknown, spec: HaproxySpec): string {
  const e = err as NodeJS.ErrnoException;
  const where = spec.socket ? `socket ${spec.socket}` : `stats page`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `${where}: connection refused (is haproxy running?)`;
    case 'ENOENT':
      return `${where}: no such file (is haproxy running, with 'stats socket' at that path?)`;
    case 'EACCES':
      return `${where}: permission denied`;
    default:
      return `${where}: ${e.message}`;
  }
}
