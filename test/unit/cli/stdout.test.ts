// Unit tests for src/cli/stdout.ts: standard output written with writeSync, and what it does
// when a write fails or would block (as Node's process.stdout would, with bin/bootstrap's handler).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDirEach } from '../../helpers/temp.js';
import { FdOutput, plainOutput, type Output } from '../../../src/cli/stdout.js';

/** A stand-in for Node's stream: what it was handed, in order. */
function recorder(): Output & { got: Buffer[] } {
  const got: Buffer[] = [];
  return { got, write: (t) => got.push(Buffer.from(t)) };
}

describe('FdOutput', () => {
  const dir = tempDirEach('stdout');

  it('writes everything, in order, and never touches the stream or says anything', () => {
    const path = join(dir(), 'out');
    const fd = openSync(path, 'w');
    const said: string[] = [];
    const stream = recorder();
    try {
      const out = new FdOutput(fd, () => stream, (m) => said.push(m));
      out.write('one\n');
      out.write(Buffer.from('twó\n'));
      out.write('x'.repeat(1 << 20));
      assert.equal(out.failed, false);
    } finally {
      closeSync(fd);
    }
    assert.equal(readFileSync(path, 'utf8'), `one\ntwó\n${'x'.repeat(1 << 20)}`);
    assert.deepEqual([stream.got, said], [[], []]);
  });

  it('a full device (/dev/full): said once, failed, nothing more written', () => {
    const fd = openSync('/dev/full', 'w');
    const said: string[] = [];
    try {
      const out = new FdOutput(fd, () => recorder(), (m) => said.push(m));
      out.write('a\n');
      out.write('b\n');
      assert.equal(out.failure, 'ENOSPC');
      assert.equal(out.failed, true);
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(said, ['bootstrap: cannot write to standard output: ENOSPC (what it printed is incomplete)\n']);
  });

  it('a reader that left (EPIPE): nothing said, not failed, the rest dropped', async () => {
    // The parent's end of a child's stdin (a Unix socket, as Node makes it), which the child closed.
    const child = spawn('sh', ['-c', 'exec 0<&-; sleep 30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const said: string[] = [];
    try {
      const out = new FdOutput(fdOf(child.stdin), () => recorder(), (m) => said.push(m));
      for (let i = 0; i < 500 && out.failure === null; i++) {
        out.write('line\n'); // accepted until the child has closed its end
        await new Promise((r) => setTimeout(r, 10));
      }
      out.write('line\n');
      assert.equal(out.failure, 'EPIPE');
      assert.equal(out.failed, false);
    } finally {
      child.kill('SIGKILL');
    }
    assert.deepEqual(said, []);
  });

  it('a write that would block (non-blocking and full) hands the rest, and all after, to the stream, in order', async () => {
    // libuv makes its end of the child's stdin non-blocking; the reader reads nothing for a while.
    const child = spawn('sh', ['-c', 'sleep 30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      const fd = fdOf(child.stdin);
      const stream = recorder();
      const out = new FdOutput(fd, () => stream, () => assert.fail('nothing to say'));
      const big = Buffer.alloc(4 << 20, 'y');
      out.write(big);
      out.write('after\n');
      assert.equal(out.failure, null);
      const handed = Buffer.concat(stream.got);
      assert.ok(handed.length > 0 && handed.length < big.length + 6, `${handed.length} bytes handed on`);
      assert.ok(handed.subarray(0, -6).every((b) => b === 0x79), 'the rest of the big write');
      assert.equal(handed.subarray(-6).toString(), 'after\n');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('plainOutput', () => {
  const dir = tempDirEach('plain');

  it('a file, /dev/null and a socket are written directly; a closed fd is left to Node', async () => {
    const child = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const fds = [openSync('/dev/null', 'w'), openSync(join(dir(), 'out'), 'w')];
    try {
      assert.deepEqual([...fds, fdOf(child.stdin)].map(plainOutput), [true, true, true]);
    } finally {
      for (const fd of fds) closeSync(fd);
      child.kill('SIGKILL');
    }
    assert.equal(plainOutput(fds[0]!), false, 'closed');
  });
});

/** The fd under a stream Node made for a child's stdio. */
function fdOf(stream: unknown): number {
  const fd = (stream as { _handle?: { fd?: number } })._handle?.fd;
  assert.ok(typeof fd === 'number' && fd > 2, 'the stream has an fd');
  return fd;
}
