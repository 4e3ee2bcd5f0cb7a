// The exec kind: a command, without a shell; healthy on exit 0, and what it said first is the
// detail.

import { splitCommand } from '../config/command-line.js';
import { runChild } from '../util/child.js';
import { resolveProgram } from '../util/trust.js';
import type { CheckContext, CheckVerdict, HeartbeatKind, SectionReader, SpecBase } from './types.js';

export interface ExecSpec extends SpecBase {
  type: 'exec';
  /** argv: the program (found on the agent's PATH), then its arguments. */
  command: string[];
}

function parse(r: SectionReader, base: SpecBase): ExecSpec {
  return { ...base, type: 'exec', command: splitCommand(r.str('command') ?? '', r.where) };
}

/**
 * The check is over when its command exits, not when its output closes: whatever it left
 * running (a background child holding the pipe, a setsid daemon) is ended then (util/child).
 * It runs with the agent's environment; its program is found on that PATH and run by the path
 * the trust rules judged (util/trust).
 */
async function check(spec: ExecSpec, { signal, env, masker }: CheckContext): Promise<CheckVerdict> {
  const [program, ...args] = spec.command as [string, ...string[]]; // splitCommand refuses an empty command
  const file = resolveProgram(program, env);
  if (!file) return { healthy: false, detail: `cannot run ${program}: not found${program.includes('/') ? '' : ' on PATH'}` };
  const lines: string[] = [];
  const r = await runChild({ file, args, argv0: program, env, timeoutMs: spec.timeoutMs, killGraceMs: 0, signal, masker, onLine: (l) => lines.length < 64 && lines.push(l) });
  const first = lines.find((l) => l.trim() !== '')?.trim().slice(0, 4096) ?? '';
  if (r.error) return { healthy: false, detail: `cannot run ${program}: ${r.error}` };
  if (r.stopped) return { healthy: false, detail: `${program} did not finish in time (killed)` };
  if (r.code === 0) return { healthy: true, detail: first || 'exit 0' };
  return { healthy: false, detail: `${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${first ? `: ${first}` : ''}` };
}

export const exec: HeartbeatKind<ExecSpec> = { keys: ['command'], parse, check };
