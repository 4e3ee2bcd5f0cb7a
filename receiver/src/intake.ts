// POST /callback: a bounded body, its signature (401), its JSON and schema (400), then stored
// once per X-Bootstrap-Delivery and answered 2xx only after the commit. The agent retries 408,
// 429 and 5xx and gives up on other 4xx (its outbox/dead/), so every refusal here is final for
// that callback and is counted in /metrics.

import type { IncomingMessage } from 'node:http';
import type { CallbackBody } from './fleet.js';
import { validate } from './json-schema.js';
import type { Counters, Refusal } from './metrics.js';
import { keyFor, KeyUnusable, verifySignature, type Keys } from './signature.js';
import type { Store } from './storage/store.js';

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  /** One line for the log (never the key, never the body). */
  note: string;
}

export interface Intake {
  keys: Keys;
  schema: Record<string, unknown>;
  store: Store;
  counters: Counters;
  maxBodyBytes: number;
  /** --retain: a callback that finished longer ago than this is acknowledged, not stored (null: none is). */
  retainMs?: number | null;
}

class TooLarge extends Error {}

/** The body, or TooLarge once it passes `max` bytes (said by Content-Length or counted). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > max) {
    req.resume(); // read and dropped (bounded by the request timeout), so the client reads the 413
    return Promise.reject(new TooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume(); // drain, so the 413 can be read by the client
        reject(new TooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** `detail` goes to the log only: the operator's business, not the caller's. */
function refuse(c: Counters, reason: Refusal, status: number, error: string, detail = error): Answer {
  c.refused[reason]++;
  return { status, body: { error }, note: `refused (${reason}): ${detail}` };
}

/** The body's fields stored as text columns: a NUL there is an error in PostgreSQL, so refused on both databases. */
const textColumns = ['server', 'id', 'kind', 'action', 'status', 'label', 'started_at', 'finished_at', 'mode'] as const;

/**
 * The first integer of the body stored in an integer column that the column cannot hold, or null:
 * the schema allows any integer, PostgreSQL's INTEGER is 32-bit and its BIGINT refuses `1e+21`;
 * refused on both databases, so both store the same callbacks (else 500 for ever on one).
 */
function outOfRange(body: CallbackBody): string | null {
  const int4 = (v: unknown) => v === undefined || v === null || (Number.isInteger(v) && Math.abs(v as number) < 2 ** 31);
  const fields: [string, unknown, boolean][] = [
    ['exit_code', body.exit_code, int4(body.exit_code)],
    ['failed_runs_since_success', body.failed_runs_since_success, int4(body.failed_runs_since_success)],
    ['counts.changed', body.counts?.changed, int4(body.counts?.changed)],
    ['duration_ms', body.duration_ms, Number.isSafeInteger(body.duration_ms)],
  ];
  return fields.find(([, , ok]) => !ok)?.[0] ?? null;
}

/**
 * The server a body claims to be from, read without parsing it: the first `"server": "…"` in its
 * first 4 KiB, where the agent writes it (after schema, kind and id). Parsing an untrusted
 * megabyte first would cost up to 100 times the HMAC (deeply nested JSON: half a second), so an
 * unsigned body gets nothing but the signature check; the parsed name must match this one.
 */
function claimedServer(raw: Buffer): string | null {
  const m = /"server"\s*:\s*("(?:[^"\\\u0000-\u001f]|\\.){1,1000}")/.exec(raw.subarray(0, 4096).toString('utf8'));
  try {
    return m ? (JSON.parse(m[1]!) as string) : null;
  } catch {
    return null;
  }
}

/** null when the body is signed with the key of the server it claims (or the fleet's), else the refusal. */
async function authenticate(req: IncomingMessage, raw: Buffer, it: Intake): Promise<Answer | null> {
  const claimed = it.keys.dir === null ? null : claimedServer(raw);
  let key: Buffer | null;
  try {
    key = await keyFor(it.keys, claimed);
  } catch (err) {
    if (err instanceof KeyUnusable) return refuse(it.counters, 'key_unusable', 503, `the key of ${JSON.stringify(claimed)} is unusable (see the receiver's log)`, err.message);
    throw err;
  }
  const signature = req.headers['x-bootstrap-signature-256'];
  if (!key || !verifySignature(key, raw, Array.isArray(signature) ? signature[0] : signature)) {
    it.counters.refused.signature++;
    return { status: 401, body: { error: 'signature missing or wrong' }, note: `refused (signature): ${signature ? 'wrong' : 'missing'}${key ? '' : ', no key for this server'}` };
  }
  return null;
}

function serverOf(parsed: unknown): string | null {
  const s = (parsed as { server?: unknown } | null)?.server;
  return typeof s === 'string' ? s : null;
}

export async function receiveCallback(req: IncomingMessage, it: Intake): Promise<Answer> {
  let raw: Buffer;
  try {
    raw = await readBody(req, it.maxBodyBytes);
  } catch (err) {
    if (err instanceof TooLarge) return refuse(it.counters, 'too_large', 413, `body over ${it.maxBodyBytes} bytes`);
    throw err;
  }
  const refused = await authenticate(req, raw, it);
  if (refused) return refused;
  let parsed: unknown;
  let parseError: string | null = null;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    parseError = (err as Error).message;
  }
  // The key was chosen by the name claimed at the top of the body: the name it holds must be that one.
  if (parseError === null && it.keys.dir !== null && serverOf(parsed) !== claimedServer(raw)) {
    return refuse(it.counters, 'signature', 401, 'signature missing or wrong', 'the server named in the body is not the first "server" field (where the agent writes it)');
  }
  if (parseError !== null) return refuse(it.counters, 'malformed', 400, `not JSON: ${parseError}`);
  const problems = validate(it.schema, parsed);
  if (problems.length > 0) return refuse(it.counters, 'invalid', 400, `does not fit the callback schema: ${problems.slice(0, 5).join('; ')}`);
  const body = parsed as CallbackBody;
  const nul = textColumns.find((k) => typeof body[k] === 'string' && body[k].includes('\0'));
  if (nul) return refuse(it.counters, 'invalid', 400, `$.${nul}: contains a NUL character (a stored text cannot hold it)`);
  const big = outOfRange(body);
  if (big) return refuse(it.counters, 'invalid', 400, `$.${big}: out of range (a stored integer cannot hold it)`);
  const delivery = String(req.headers['x-bootstrap-delivery'] ?? body.id).slice(0, 200);
  try {
    const now = Date.now();
    const outcome = await it.store.record(delivery, body, raw.toString('utf8'), now, it.retainMs == null ? null : now - it.retainMs);
    if (outcome === 'duplicate') it.counters.duplicates++;
    else if (outcome === 'expired') it.counters.expired++;
    else it.counters.stored(body.kind, body.status);
    const how = outcome === 'stored' ? '' : outcome === 'expired' ? ' (finished before the history kept, --retain: not stored)' : ' (duplicate)';
    return { status: 200, body: { stored: outcome === 'stored', duplicate: outcome === 'duplicate', ...(outcome === 'expired' ? { expired: true } : {}), id: body.id }, note: `${body.server} ${body.kind} ${body.id} ${body.status} delivery ${delivery}${how}` };
  } catch (err) {
    return refuse(it.counters, 'store_error', 500, 'not stored (see the receiver\'s log)', `not stored: ${(err as Error).message}`);
  }
}
