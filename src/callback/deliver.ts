// Delivery of the outbox: signed POSTs through node:http/https (loaded only here), each bounded
// by AbortSignal.timeout. Callbacks are grouped by receiver (their URL): each receiver's go oldest
// first and stop at its own first failure, so a later one never overtakes an earlier one to the
// same receiver; receivers are served in parallel (at most `receiversAtOnce`), all within the one
// deadline, so a receiver that does not answer never holds back another's callbacks. Network
// errors, timeouts, 408, 429 (honouring Retry-After) and 5xx are retried with capped exponential
// backoff and jitter while the budget lasts; other 4xx go to dead/ for good. Delivery never throws
// into a run: what is not delivered waits.

import { lstatSync, type Stats } from 'node:fs';
import { readBoundedSync } from '../util/files.js';
import { pathTrustProblem } from '../util/trust.js';
import { createRequire } from 'node:module';
import { redactUrl, type CallbackConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { PidLock } from '../lock/pid-lock.js';
import type { Logger } from '../log/log.js';
import { readVersion } from '../version.js';
import { buryExpired, dropOlderCheckups, receiverOf } from './hygiene.js';
import { Outbox, idFromName, parseName, type OutboxEntry, type WaitingName } from './outbox.js';
import { join } from 'node:path';
import { crypto } from '../util/lazy.js';

export interface FlushReport {
  delivered: string[];
  waiting: string[];
  dead: string[];
  /** Older checkup reports dropped unsent: only each receiver's newest is kept. */
  superseded: string[];
  /** Moved back from dead/ to be sent again (`--requeue-dead`). */
  requeued: string[];
  /** Another flusher holds the outbox lock: nothing was tried. */
  busy: boolean;
}

export interface FlushOptions {
  config: CallbackConfig;
  log: Logger;
  /** The whole flush ends by then (epoch ms). */
  deadline: number;
  /** How long to wait for another flusher (0: skip when busy). */
  lockWaitMs?: number;
  backoff?: { baseMs: number; capMs: number };
  /** First move every dead callback back to the outbox. */
  requeueDead?: boolean;
}

/** Receivers sent to at once; more wait for a free slot (within the same deadline). */
const receiversAtOnce = 8;

/** What every POST of one flush shares. */
interface Delivery {
  outbox: Outbox;
  key: Buffer | null;
  ca: Buffer | undefined;
  o: FlushOptions;
  report: FlushReport;
}

/**
 * One POST, the whole exchange (connect, send, answer, body) bounded by `signal`; the answer's
 * body is read and dropped. node:http, not undici: undici parses HTTP with llhttp compiled to
 * WebAssembly, and compiling it doubled the memory of every run that sent a callback (measured:
 * 106 MB peak RSS against 54 MB for an upgrade; bench/fleet.mjs prints it). node:http(s) loads on this path only.
 */
function post(url: string, body: string, headers: Record<string, string>, signal: AbortSignal, ca: Buffer | undefined): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const load = createRequire(import.meta.url);
  const https = url.startsWith('https:');
  const { request } = https ? (load('node:https') as typeof import('node:https')) : (load('node:http') as typeof import('node:http'));
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', signal, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, ...(https && ca ? { ca } : {}) }, (res) => {
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      // Closed before its end (reset, or stopped by the signal): settled as an error either way.
      res.on('close', () => reject(signal.reason ?? new Error('connection closed before the answer ended')));
      res.resume();
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Reads the HMAC key. Missing, empty, readable by group/other, a symlink, or a file or path
 * that another user could replace (the trust rules of steps, util/trust): refused (78), never
 * silently unsigned — a key a local user can read or swap lets them forge signed callbacks.
 */
export function readSecret(file: string | undefined): Buffer | null {
  if (!file) return null;
  let st: Stats;
  let key: Buffer;
  try {
    st = lstatSync(file);
    if (st.isSymbolicLink()) throw new ConfigError(`[callback] secret_file: ${file} is a symlink`, `put the key in ${file} itself, owned by root, mode 600`);
    key = readBoundedSync(file, { maxBytes: 64 * 1024 }); // a regular file only: a FIFO would hang
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`[callback] secret_file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'create it with mode 600, or remove secret_file');
  }
  if ((st.mode & 0o077) !== 0) throw new ConfigError(`[callback] secret_file: ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)})`, `chmod 600 ${file}`);
  const untrusted = pathTrustProblem(file, process.getuid?.() ?? 0);
  if (untrusted) throw new ConfigError(`[callback] secret_file: ${file} cannot be trusted: ${untrusted.path} ${untrusted.reason}`, `chown root ${file} and chmod go-w the directories above it`);
  const trimmed = trimAsciiSpace(key);
  if (trimmed.length === 0) throw new ConfigError(`[callback] secret_file: ${file} is empty`, 'put the HMAC key in it');
  return trimmed;
}

/**
 * The HMAC key is the file's bytes with leading and trailing ASCII whitespace (space, tab, LF, VT,
 * FF, CR) removed, nothing else changed or decoded: what Python's `bytes.strip()` does, so a
 * receiver can read the same file and get the same key (docs/callbacks.md).
 */
function trimAsciiSpace(bytes: Buffer): Buffer {
  const space = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
  let start = 0;
  let end = bytes.length;
  while (start < end && space(bytes[start]!)) start++;
  while (end > start && space(bytes[end - 1]!)) end--;
  return bytes.subarray(start, end);
}

/**
 * The key to mask in logs, or null when there is none that could sign (a refused key file
 * refuses every command that signs, so nothing is signed with it).
 */
export function callbackKeyToMask(file: string | undefined): string | null {
  try {
    return readSecret(file)?.toString('utf8') ?? null;
  } catch {
    return null;
  }
}

export function sign(key: Buffer, body: string): string {
  return `sha256=${crypto().createHmac('sha256', key).update(body, 'utf8').digest('hex')}`;
}

export async function flushOutbox(stateDir: string, o: FlushOptions): Promise<FlushReport> {
  const outbox = new Outbox(stateDir);
  const report: FlushReport = { delivered: [], waiting: [], dead: [], superseded: [], requeued: [], busy: false };
  const waiting = await outbox.names();
  if (waiting.length === 0 && !(o.requeueDead && (await outbox.counts()).dead > 0)) return report;
  let handle;
  try {
    handle = await new PidLock(join(outbox.dir, 'flush.lock')).acquire({ command: 'callback.flush', waitMs: o.lockWaitMs ?? 0, pollMs: 100 });
  } catch {
    report.busy = true;
    report.waiting = waiting.map(idFromName);
    return report;
  }
  try {
    const key = readSecret(o.config.secretFile);
    if (key) o.log.addSecrets([key.toString('utf8')]); // masked in logs like a secret setting
    const ca = o.config.caFile ? readBoundedSync(o.config.caFile, { maxBytes: 1024 * 1024 }) : undefined;
    if (o.requeueDead) report.requeued = await outbox.requeueDead();
    // Listed again under the lock (another flusher may have delivered some); tidied from the names.
    const listed = (await outbox.names()).map(parseName);
    const fresh = await dropOlderCheckups(outbox, listed, o.config.url, o.log);
    report.superseded = fresh.dropped;
    const young = await buryExpired(outbox, fresh.kept, o.config.maxAgeMs, o.log);
    report.dead.push(...young.buried);
    await deliverByReceiver(young.kept, { outbox, key, ca, o, report });
  } finally {
    await handle.release();
  }
  return report;
}

/**
 * Each receiver's callbacks in their own line, the lines in parallel (at most receiversAtOnce).
 * Files of an older version, whose names do not say where they go, share one line as before.
 */
async function deliverByReceiver(names: WaitingName[], d: Delivery): Promise<void> {
  const lines = new Map<string, WaitingName[]>();
  for (const w of names) {
    const receiver = receiverOf(w, d.o.config.url) ?? '';
    const line = lines.get(receiver);
    if (line) line.push(w);
    else lines.set(receiver, [w]);
  }
  const todo = [...lines.values()];
  const worker = async (): Promise<void> => {
    for (let line = todo.shift(); line; line = todo.shift()) await deliverLine(line, d);
  };
  await Promise.all(Array.from({ length: Math.min(receiversAtOnce, todo.length) }, worker));
}

/** One receiver's callbacks, oldest first, while there is time and it answers: the rest are named, not read. */
async function deliverLine(names: WaitingName[], d: Delivery): Promise<void> {
  let i = 0;
  for (; i < names.length && Date.now() < d.o.deadline; i++) {
    const entry = await d.outbox.read(names[i]!.name);
    if (!entry) continue;
    if ('broken' in entry) {
      await d.outbox.buryBroken(entry.file, entry.broken);
      d.o.log.error(`outbox file ${entry.file} is broken (${entry.broken}); moved to ${d.outbox.deadDir}`);
      d.report.dead.push(names[i]!.id);
      continue;
    }
    const outcome = await deliverOne(d.outbox, entry, d.key, d.ca, d.o);
    d.report[outcome].push(entry.item.id);
    // A receiver that is down for one is down for the rest of its own: leave them for later.
    if (outcome === 'waiting') {
      i++;
      break;
    }
  }
  for (; i < names.length; i++) d.report.waiting.push(names[i]!.id);
}

async function deliverOne(outbox: Outbox, entry: OutboxEntry, key: Buffer | null, ca: Buffer | undefined, o: FlushOptions): Promise<'delivered' | 'waiting' | 'dead'> {
  const item = entry.item;
  const url = item.url_source === 'flag' ? item.url : (o.config.url ?? null);
  if (!url) {
    await outbox.bury(entry, 'no callback URL is configured any more');
    return 'dead';
  }
  const shown = redactUrl(url);
  const { target, authorization } = splitUserinfo(url);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `bootstrap-agent/${readVersion()}`,
    'x-bootstrap-delivery': item.id,
  };
  if (authorization) headers['authorization'] = authorization;
  if (key) headers['x-bootstrap-signature-256'] = sign(key, item.body);
  const { baseMs, capMs } = o.backoff ?? { baseMs: 500, capMs: 30_000 };
  for (let attempt = 0; ; attempt++) {
    const remaining = o.deadline - Date.now();
    if (remaining <= 0) break;
    item.attempts++;
    o.log.debug(`callback ${item.id}: POST ${shown} (attempt ${item.attempts}, ${Math.round(remaining)} ms left)`);
    let waitMs = Math.min(capMs, baseMs * 2 ** attempt) * (0.8 + Math.random() * 0.4);
    try {
      const res = await post(target, item.body, headers, AbortSignal.timeout(Math.min(remaining, o.config.timeoutMs)), ca);
      const statusCode = res.status;
      if (statusCode >= 200 && statusCode < 300) {
        await outbox.remove(entry);
        o.log.info(`callback ${item.id} delivered to ${shown} (HTTP ${statusCode}, attempt ${item.attempts})`);
        return 'delivered';
      }
      if (statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) {
        await outbox.bury(entry, `HTTP ${statusCode} from ${shown}`);
        o.log.error(`callback ${item.id} refused by ${shown} (HTTP ${statusCode}); moved to ${outbox.deadDir}`);
        return 'dead';
      }
      item.last_error = `HTTP ${statusCode}`;
      // Retry-After may ask for longer than the backoff, never for less: 0, -1 or a past date
      // must not turn the retries into a flood.
      const retryAfter = parseRetryAfter(res.headers['retry-after']);
      if (retryAfter !== null) waitMs = Math.max(retryAfter, waitMs);
    } catch (err) {
      item.last_error = describeNetworkError(err);
    }
    o.log.warn(`callback ${item.id} to ${shown}: ${item.last_error}; ${Date.now() + waitMs < o.deadline ? `retrying in ${(waitMs / 1000).toFixed(1)} s` : 'will retry later'}`);
    if (Date.now() + waitMs >= o.deadline) break;
    await new Promise((r) => setTimeout(r, waitMs));
  }
  await outbox.update(entry).catch(() => {});
  return 'waiting';
}

/**
 * Userinfo in the callback URL (`https://user:pass@host/…`) is sent as HTTP Basic auth, as curl
 * does; it is never logged (redactUrl drops it).
 */
function splitUserinfo(url: string): { target: string; authorization: string | null } {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return { target: url, authorization: null };
  const credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  u.username = '';
  u.password = '';
  return { target: u.toString(), authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` };
}

function parseRetryAfter(value: string | string[] | undefined): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? null : date - Date.now();
}

function describeNetworkError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'no answer in time';
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET') return 'connection reset';
  return code ?? e.message;
}
