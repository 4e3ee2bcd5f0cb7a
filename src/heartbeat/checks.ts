// The check types other than haproxy: http (status, optional body regex), tcp (connect), exec
// (a command without a shell; exit 0 = healthy).

import type { TextMasker } from '../pipeline/output.js';
import { runChild } from '../util/child.js';
import { resolveProgram } from '../util/trust.js';
import { connect } from 'node:net';
import type { HeartbeatSpec } from '../config/config.js';
import { httpGet } from './http-get.js';
import type { CheckVerdict } from './types.js';

export async function checkHttp(spec: HeartbeatSpec, signal: AbortSignal): Promise<CheckVerdict> {
  try {
    const res = await httpGet(spec.url!, signal, 1024 * 1024);
    const want = spec.expectStatus ?? 200;
    if (res.status !== want) return { healthy: false, detail: `HTTP ${res.status}, expected ${want}` };
    if (spec.expectBody && !new RegExp(spec.expectBody).test(res.body)) return { healthy: false, detail: `HTTP ${res.status}, but the body does not match /${spec.expectBody}/` };
    return { healthy: true, detail: `HTTP ${res.status}` };
  } catch (err) {
    return { healthy: false, detail: networkError(err) };
  }
}

export function checkTcp(spec: HeartbeatSpec, signal: AbortSignal): Promise<CheckVerdict> {
  const { host, port } = spec.address!;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (v: CheckVerdict) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(v);
    };
    const onAbort = () => done({ healthy: false, detail: `no connection to ${host}:${port} in time` });
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => done({ healthy: true, detail: `connected to ${host}:${port}` }));
    socket.on('error', (err) => done({ healthy: false, detail: `${host}:${port}: ${networkError(err)}` }));
  });
}

/**
 * The check is over when its command exits, not when its output closes: whatever it left
 * running (a background child holding the pipe, a setsid daemon) is ended then (util/child).
 * It runs with the agent's environment; its program is found on that PATH and run by the path
 * the trust rules judged (util/trust).
 */
export async function checkExec(spec: HeartbeatSpec, signal: AbortSignal, env: NodeJS.ProcessEnv, masker: TextMasker): Promise<CheckVerdict> {
  const [program, ...args] = spec.command!;
  const file = resolveProgram(program!, env);
  if (!file) return { healthy: false, detail: `cannot run ${program}: not found${program!.includes('/') ? '' : ' on PATH'}` };
  const lines: string[] = [];
  const r = await runChild({ file, args, argv0: program, env, timeoutMs: spec.timeoutMs, killGraceMs: 0, signal, masker, onLine: (l) => lines.length < 64 && lines.push(l) });
  const first = lines.find((l) => l.trim() !== '')?.trim().slice(0, 4096) ?? '';
  if (r.error) return { healthy: false, detail: `cannot run ${program}: ${r.error}` };
  if (r.stopped) return { healthy: false, detail: `${program} did not finish in time (killed)` };
  if (r.code === 0) return { healthy: true, detail: first || 'exit 0' };
  return { healthy: false, detail: `${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${first ? `: ${first}` : ''}` };
}

export function networkError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ECONNRESET') return 'connection reset';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `cannot resolve host (${e.code})`;
  return e.message;
}
