// The check types other than haproxy: http (status, optional body regex), tcp (connect), exec
// (a command without a shell; exit 0 = healthy).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { signalGroup, sweepMarked } from '../util/process.js';
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
 * running (a background child holding the pipe, a setsid daemon) is ended then, found by its
 * group and by a marker in its environment.
 */
export function checkExec(spec: HeartbeatSpec, signal: AbortSignal): Promise<CheckVerdict> {
  const [program, ...args] = spec.command!;
  const marker = `BOOTSTRAP_CHECK_ID=${randomBytes(8).toString('hex')}`;
  const eq = marker.indexOf('=');
  return new Promise((resolve) => {
    const child = spawn(program!, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, [marker.slice(0, eq)]: marker.slice(eq + 1) } });
    let output = '';
    const collect = (d: Buffer) => {
      if (output.length < 4096) output += d.toString('utf8');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const firstLine = () => output.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
    const endAll = () => {
      signalGroup(child.pid!, 'SIGKILL'); // the command and all it started
      void sweepMarked(marker, 0);
    };
    signal.addEventListener('abort', endAll, { once: true });
    child.on('error', (err) => {
      signal.removeEventListener('abort', endAll);
      resolve({ healthy: false, detail: `cannot run ${program}: ${err.message}` });
    });
    child.on('exit', (code, sig) => {
      signal.removeEventListener('abort', endAll);
      // What it wrote just before it exited is still in the pipes: read it for a moment.
      setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        endAll();
        if (signal.aborted) resolve({ healthy: false, detail: `${program} did not finish in time (killed)` });
        else if (code === 0) resolve({ healthy: true, detail: firstLine() || 'exit 0' });
        else resolve({ healthy: false, detail: `${sig ? `killed by ${sig}` : `exit ${code}`}${firstLine() ? `: ${firstLine()}` : ''}` });
      }, 20);
    });
  });
}

export function networkError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ECONNRESET') return 'connection reset';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `cannot resolve host (${e.code})`;
  return e.message;
}
