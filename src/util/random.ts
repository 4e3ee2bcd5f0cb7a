// Random hex for file names, run ids and the launcher's nonce, read from /dev/urandom: the
// kernel's generator, the one crypto.randomBytes draws from too. Loading node:crypto for those
// few bytes cost every run 4–5 ms on Node 20 (more on 24): crypto is loaded only to sign and hash
// (callbacks, the outbox, scratch dirs), and here where /dev/urandom cannot be read (a chroot
// with no /dev).

import { closeSync, openSync, readSync } from 'node:fs';
import { crypto } from './lazy.js';

/** `bytes` random bytes as hex. `source` is for tests: a file that cannot give them means crypto. */
export function randomHex(bytes: number, source = '/dev/urandom'): string {
  const buffer = Buffer.alloc(bytes);
  try {
    const fd = openSync(source, 'r');
    try {
      if (readSync(fd, buffer, 0, bytes, null) === bytes) return buffer.toString('hex');
    } finally {
      closeSync(fd);
    }
  } catch {
    // no /dev/urandom to read: crypto's own source below
  }
  return crypto().randomBytes(bytes).toString('hex');
}
