// X-Bootstrap-Signature-256: `sha256=<hex HMAC-SHA256 of the exact body>`, keyed as the agent
// keys it (the secret file's bytes without leading and trailing ASCII whitespace). One key for
// the fleet (--secret-file) and/or one per server (--secrets-dir/<server name>, read at each
// callback so a new server needs no restart). The key is never logged nor sent anywhere.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { constants, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface Keys {
  fleet: Buffer | null;
  dir: string | null;
}

/** The agent's trimming: leading and trailing space, tab, LF, VT, FF, CR. */
function trimKey(b: Buffer): Buffer {
  const space = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
  let start = 0;
  let end = b.length;
  while (start < end && space(b[start]!)) start++;
  while (end > start && space(b[end - 1]!)) end--;
  return b.subarray(start, end);
}

/** A key file others may read or write lets them forge any callback it signs: refused, as the agent refuses its own. */
function exposed(st: Stats): string | null {
  return (st.mode & 0o006) !== 0 ? `readable or writable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it` : null;
}

/** Reads the fleet key at start (and creates it, mode 600, with `init`): a missing key is a usage error of the caller. */
export function loadKeys(secretFile: string | null, secretsDir: string | null, init: boolean): Keys {
  let fleet: Buffer | null = null;
  if (secretFile !== null) {
    if (init && !existsSync(secretFile)) {
      mkdirSync(dirname(secretFile), { recursive: true, mode: 0o700 });
      writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    }
    const problem = exposed(statSync(secretFile));
    if (problem) throw new Error(`--secret-file ${secretFile} is ${problem}`);
    fleet = trimKey(readFileSync(secretFile));
    if (fleet.length === 0) throw new Error(`--secret-file ${secretFile} is empty: put the HMAC key in it`);
  }
  if (secretsDir !== null) {
    if (!existsSync(secretsDir)) throw new Error(`--secrets-dir ${secretsDir} does not exist`);
    // Whoever may add a file there may sign as any server.
    const mode = statSync(secretsDir).mode;
    if ((mode & 0o022) !== 0) throw new Error(`--secrets-dir ${secretsDir} is writable by group or others (mode ${(mode & 0o777).toString(8)}): chmod go-w it`);
  }
  return { fleet, dir: secretsDir };
}

/** A server's key file that exists but cannot serve: the callback waits (5xx, retried) until it is fixed. */
export class KeyUnusable extends Error {}

/** The server's own key file: its key, null when there is none (ENOENT), KeyUnusable otherwise. */
async function ownKey(file: string): Promise<Buffer | null> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK); // a FIFO must not hang the request
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new KeyUnusable(`key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new KeyUnusable(`key file ${file} is not a regular file`);
    const problem = exposed(st);
    if (problem) throw new KeyUnusable(`key file ${file} is ${problem}`);
    const key = trimKey(await handle.readFile());
    if (key.length === 0) throw new KeyUnusable(`key file ${file} is empty`);
    return key;
  } finally {
    await handle.close();
  }
}

/**
 * A server's own key when --secrets-dir has a file for it, else the fleet's; null when neither.
 * A file that is there but unusable (unreadable, empty, a directory, exposed) never falls back to
 * the fleet key: every holder of that key could then sign as this server.
 */
export async function keyFor(keys: Keys, server: string | null): Promise<Buffer | null> {
  if (keys.dir !== null && server !== null && /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(server)) {
    const own = await ownKey(join(keys.dir, server));
    if (own) return own;
  }
  return keys.fleet;
}

/** True when `header` is the signature of `body` under `key`, compared in constant time. */
export function verifySignature(key: Buffer, body: Buffer, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header?.trim() ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', key).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'));
}
