// The reference receiver (receiver/bin/bootstrap-receiver) as a child process on 127.0.0.1, on
// the Node it needs (node:sqlite: Node 22.13+, the suite's cached Node 24), whatever Node runs
// the tests; and agents (the real bin/bootstrap) whose callbacks go to it.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, sandbox, type Sandbox } from './cli.js';
import { nodeBinary, nodeVersions } from './node-bins.js';
import { iniWith, script } from './phases.js';

/** A guard against a hung request only: answers take milliseconds, seconds on a loaded machine. */
const requestTimeoutMs = 30_000;

export const receiverBin = join(root, 'receiver/bin/bootstrap-receiver');

export interface Receiver {
  url: string;
  port: number;
  callbackUrl: string;
  child: ChildProcess;
  /** Its stdout and stderr so far. */
  output(): string;
  get(path: string): Promise<{ status: number; text: string; json: any }>;
  post(body: string, headers: Record<string, string>): Promise<{ status: number; json: any }>;
  /** SIGTERM, and its exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

export interface ReceiverStart {
  db: string;
  secretFile?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  port?: number;
}

/** Starts it and waits (bounded) for its "listening on" line. */
export async function startReceiver(o: ReceiverStart): Promise<Receiver> {
  const args = [receiverBin, '--listen', `127.0.0.1:${o.port ?? 0}`, '--db', o.db, ...(o.secretFile ? ['--secret-file', o.secretFile] : []), ...(o.args ?? [])];
  const child = spawn(nodeBinary(nodeVersions.lts24), args, { env: { PATH: process.env['PATH'], ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the receiver did not listen within 30 s:\n${out}`)), 30_000);
    const look = () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the receiver exited (${code}) before listening:\n${out}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const get = async (path: string) => {
    const { status, text } = await request(url + path);
    return { status, text, json: parsed(text) };
  };
  const post = async (body: string, headers: Record<string, string>) => {
    const { status, text } = await request(`${url}/callback`, body, { 'content-type': 'application/json', ...headers });
    return { status, json: parsed(text) };
  };
  return {
    url,
    port,
    callbackUrl: `${url}/callback`,
    child,
    output: () => out,
    get,
    post,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * One request on a connection of its own. fetch's pool reuses a keep-alive socket idle for up to
 * 4 s (undici: the receiver's 5 s keep-alive less 1 s) that the receiver may be closing meanwhile
 * on a loaded machine: "fetch failed" (other side closed) between two agent runs.
 */
function request(url: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sized = body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers };
    const req = httpRequest(url, { method: body === undefined ? 'GET' : 'POST', headers: sized, agent: false, timeout: requestTimeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${requestTimeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** JSON, or null (a page, the metrics, an empty answer). */
function parsed(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A temp dir with a secret file (mode 600) for receiver and agents. */
export function secretDir(key = 'receiver-test-key'): { dir: string; secretFile: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-receiver-'));
  const secretFile = join(dir, 'callback.secret');
  writeFileSync(secretFile, `${key}\n`, { mode: 0o600 });
  return { dir, secretFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * An agent named `name` calling back to `callbackUrl`, signed with the key in `secret` (written to
 * its own file). `[callback] timeout` bounds the whole in-run delivery: 30 s by default, as an
 * answer the receiver gives in milliseconds can take seconds on a loaded machine (SQLite's fsync
 * among other tests' I/O), and a callback that missed it stays in the outbox, not in the
 * receiver. A short one only where the agent is meant to give up.
 */
export function agentFor(name: string, callbackUrl: string, secret: string, phases: Record<string, string | number> = {}, extra = '', timeoutS = 30): Sandbox {
  const box = sandbox(iniWith(phases, `\n[callback]\nurl = ${callbackUrl}\nsecret_file = callback.secret\ntimeout = ${timeoutS}\n${extra}`).replace(/^name = test-01$/m, `name = ${name}`));
  writeFileSync(join(box.dir, 'callback.secret'), `${secret}\n`);
  chmodSync(join(box.dir, 'callback.secret'), 0o600);
  mkdirSync(box.phasesDir, { recursive: true });
  script(join(box.phasesDir, 'configure.d', '10-ok'), 'echo configured');
  return box;
}

export const sign = (key: string, body: string) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;

let seq = 0;
/** A callback body that fits the schema (kind run unless overridden), with a fresh run id. */
export function callbackBody(server: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = new Date();
  const id = `${now.toISOString().replace(/[-:]|\.\d+/g, '').slice(0, 15)}Z-${(++seq + Math.floor(Math.random() * 0xffff) * 256).toString(16).padStart(6, '0').slice(-6)}`;
  return {
    schema: 'bootstrap.callback', schema_version: 1, kind: 'run', id, server, action: 'refresh', status: 'success', exit_code: 0,
    started_at: now.toISOString(), finished_at: now.toISOString(), duration_ms: 10, mode: 'standby', products: { haproxy: '2.6' },
    failure: null, phases: [], heartbeat: null, label: null, counts: { changed: 1, unchanged: 0, skipped: 0, failed: 0 },
    ...overrides,
  };
}
