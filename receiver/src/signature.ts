// X-Bootstrap-Signature-256: `sha256=<hex HMAC-SHA256 of the exact body>`, keyed as the agent
// keys it (the secret file's bytes without leading and trailing ASCII whitespace). One key for
// the fleet (--secret-file) and/or one per server (--secrets-dir/<server name>, read at each
// callback so a new server needs no restart). The key is never logged nor sent anywhere.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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

/** Reads the fleet key at start (and creates it, mode 600, with `init`): a missing key is a usage error of the caller. */
export function loadKeys(secretFile: string | null, secretsDir: string | null, init: boolean): Keys {
  let fleet: Buffer | null = null;
  if (secretFile !== null) {
    if (init && !existsSync(secretFile)) {
      mkdirSync(dirname(secretFile), { recursive: true, mode: 0o700 });
      writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    }
    fleet = trimKey(readFileSync(secretFile));
    if (fleet.length === 0) throw new Error(`--secret-file ${secretFile} is empty: put the HMAC key in it`);
  }
  if (secretsDir !== null && !existsSync(secretsDir)) throw new Error(`--secrets-dir ${secretsDir} does not exist`);
  return { fleet, dir: secretsDir };
}

/** A server's own key when --secrets-dir has one for it, else the fleet's; null when neither. */
export async function keyFor(keys: Keys, server: string | null): Promise<Buffer | null> {
  if (keys.dir !== null && server !== null && /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(server)) {
    try {
      const key = trimKey(await readFile(join(keys.dir, server)));
      if (key.length > 0) return key;
    } catch {
      // no file for this server: the fleet key, if any
    }
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
