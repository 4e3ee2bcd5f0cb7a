// Random hex for file names, run ids and the launcher's nonce, read from /dev/urandom: the
// kernel's generator, which crypto.randomBytes also draws on (through getrandom). Loading
// node:crypto for those few bytes cost every run 4–5 ms on Node 20 (more on 24): crypto is loaded
// only to sign and hash (callbacks, the outbox, scratch dirs), and here when /dev/urandom is not
// the kernel's device (a chroot with no /dev, or a plain file, a FIFO or /dev/zero in its place:
// the same bytes every time would make every marker and nonce the same).

import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { crypto } from './lazy.js';

/** Linux's /dev/random (1:8) and /dev/urandom (1:9), as st_rdev encodes them. */
const kernelGenerators = new Set([(1 << 8) | 8, (1 << 8) | 9]);

/** `bytes` random bytes as hex. `source` is for tests: anything but the kernel's device means crypto. */
export function randomHex(bytes: number, source = '/dev/urandom'): string {
  const buffer = Buffer.alloc(bytes);
  try {
    // Non-blocking: a FIFO in its place cannot hang the open (the device itself never blocks);
    // libuv adds O_CLOEXEC.
    const fd = openSync(source, fsc.O_RDONLY | fsc.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (st.isCharacterDevice() && kernelGenerators.has(st.rdev) && readSync(fd, buffer, 0, bytes, null) === bytes) return buffer.toString('hex');
    } finally {
      closeSync(fd);
    }
  } catch {
    // not readable: crypto below
  }
  return crypto().randomBytes(bytes).toString('hex');
}
