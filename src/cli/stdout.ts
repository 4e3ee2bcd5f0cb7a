// This process's standard output, written with writeSync when it is a file, a pipe, a socket or
// /dev/null. Node's process.stdout loads its stream modules when first used (~3 ms, the most a
// `product.get --json` or a monitor's `server.status --json` pays beyond Node's own start), and
// a command writes its answer in one or a few calls anyway. A terminal keeps Node's stream (its
// width, colours, isTTY), as does any other device.
//
// What process.stdout's error handling (bin/bootstrap) does, this does too: a reader that left
// (EPIPE) silences the rest; any other failure (ENOSPC behind `> file`) is said once on standard
// error and makes a command that would exit 0 exit 73. A write that would block (a non-blocking
// pipe, shared with a parent, is full) hands the rest to Node's stream, which waits for room.
//
// What it assumes: commands print after their work, with no lock held (a reader that stalls
// blocks the process in writeSync, where Node's stream would queue and let timers run: a lock's
// refresh would starve); nothing else writes to process.stdout before it (only yargs' help and
// version do, and then nothing is written here), or queued data there could be overtaken. A
// datagram socket (never seen as stdout) gets what fits in one datagram, where Node's stream
// discarded everything: a larger write fails with EMSGSIZE and the command exits 73.

import { fstatSync, writeSync } from 'node:fs';

/** What a command writes its output to: a stream, or this. */
export interface Output {
  write(text: string | Uint8Array): unknown;
  readonly isTTY?: boolean;
}

export class FdOutput implements Output {
  readonly isTTY = false;
  /** Why it stopped writing: EPIPE (its reader left, said nowhere), or the failure it said. */
  failure: string | null = null;
  /** Node's stream, once a write would have blocked: everything after goes there, in order. */
  private stream: Output | null = null;

  constructor(
    private readonly fd: number,
    private readonly nodeStream: () => Output,
    private readonly say: (message: string) => void,
  ) {}

  write(text: string | Uint8Array): boolean {
    if (this.stream) return this.stream.write(text) !== false;
    if (this.failure) return true;
    const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    let at = 0;
    try {
      while (at < bytes.length) at += writeSync(this.fd, bytes, at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === 'EAGAIN') {
        this.stream = this.nodeStream();
        this.stream.write(bytes.subarray(at));
        return true;
      }
      this.failure = code;
      if (code !== 'EPIPE') this.say(`bootstrap: cannot write to standard output: ${code} (what it printed is incomplete)\n`);
    }
    return true;
  }

  /** A failure that must not end in exit 0 (a reader that left is none). */
  get failed(): boolean {
    return this.failure !== null && this.failure !== 'EPIPE';
  }
}

/** Whether `fd` can be written with writeSync as Node's stream would: a file, pipe, socket, or /dev/null and its kin. */
export function plainOutput(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    // Character devices of major 1 are /dev/null, /dev/zero, /dev/full (memory devices, never a terminal).
    return st.isFile() || st.isFIFO() || st.isSocket() || (st.isCharacterDevice() && ((st.rdev >> 8) & 0xfff) === 1);
  } catch {
    return false; // closed, or anything odd: Node's stream decides
  }
}
