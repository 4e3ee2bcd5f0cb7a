// --dry-run: syntax-checks each step whose interpreter is a POSIX shell or bash (`sh -n`,
// `bash -n`). Nothing is executed.

import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import type { Plan } from './plan.js';
import { childProcess } from '../util/lazy.js';

export interface SyntaxResult {
  phase: string;
  step: string;
  path: string;
  interpreter: string | null;
  ok: boolean;
  message: string;
}

const shells = new Set(['sh', 'bash', 'dash']);

/** The interpreter of a `#!` line (`/usr/bin/env bash` gives bash), or null. */
function shebangInterpreter(path: string): string | null {
  const buf = Buffer.alloc(256);
  let n = 0;
  const fd = openSync(path, 'r');
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  const first = buf.subarray(0, n).toString('utf8').split('\n')[0] ?? '';
  if (!first.startsWith('#!')) return null;
  const words = first.slice(2).trim().split(/\s+/);
  const program = basename(words[0] ?? '');
  return program === 'env' ? (words.find((w, i) => i > 0 && !w.startsWith('-')) ?? null) : program;
}

export async function checkSyntax(plan: Plan): Promise<SyntaxResult[]> {
  const files = [...plan.phases, plan.error].flatMap((p) =>
    p.steps.flatMap((s) => [
      { phase: p.phase, step: s.name, path: s.path },
      ...(s.check ? [{ phase: p.phase, step: `${s.name}.check`, path: s.check }] : []),
      ...(s.backout ? [{ phase: p.phase, step: `${s.name}.backout`, path: s.backout }] : []),
    ]),
  );
  return Promise.all(
    files.map(async (f) => {
      let interpreter: string | null;
      try {
        interpreter = plan.viaSh.has(f.path) ? plan.viaSh.shell : shebangInterpreter(f.path);
      } catch (err) {
        return { ...f, interpreter: null, ok: false, message: `cannot read it: ${(err as Error).message}` };
      }
      if (!interpreter || !shells.has(interpreter)) return { ...f, interpreter, ok: true, message: interpreter ? `not checked (${interpreter})` : 'not checked (no #! line)' };
      const shell = interpreter === 'bash' ? 'bash' : 'sh';
      return new Promise<SyntaxResult>((resolve) => {
        childProcess().execFile(shell, ['-n', f.path], { timeout: 10_000 }, (err, _stdout, stderr) => {
          const message = err ? (stderr.trim().split('\n')[0] ?? `${shell} -n failed`) : 'syntax ok';
          resolve({ ...f, interpreter, ok: !err, message });
        });
      });
    }),
  );
}
