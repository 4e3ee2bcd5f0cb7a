// Real servers for the tests, all on 127.0.0.1: node HTTP servers standing in for deepfiler and
// haproxy's backends, and a real haproxy (Debian's package) with a stats socket in a temp dir.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface HttpStub {
  port: number;
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** A callback receiver: answers 200 and keeps each body (parsed) with its X-Bootstrap-Delivery. */
export async function jsonReceiver(): Promise<HttpStub & { bodies: { delivery: string; body: any }[] }> {
  const bodies: { delivery: string; body: any }[] = [];
  const stub = await httpStub((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      bodies.push({ delivery: String(req.headers['x-bootstrap-delivery']), body: JSON.parse(body) });
      res.end();
    });
  });
  return { ...stub, bodies };
}

/** An HTTP server answering every request with `handler` (default: 200 "ok"). */
export async function httpStub(handler?: Parameters<typeof createServer>[1], port = 0): Promise<HttpStub> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer(handler ?? ((_req, res) => res.end('ok')));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface Haproxy {
  child: ChildProcess;
  socket: string;
  statsUrl: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Polls `show stat` until `ready` says the states are as wanted (bounded). */
  waitFor(ready: (csv: string) => boolean, timeoutMs?: number): Promise<string>;
}

export async function startHaproxy(dir: string, backends: Record<string, number[]>): Promise<Haproxy> {
  const socket = join(dir, 'admin.sock');
  const statsPort = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  const lines = [
    'global',
    `    stats socket ${socket} mode 600 level user`,
    'defaults',
    '    mode http',
    '    timeout connect 500ms',
    '    timeout client 5s',
    '    timeout server 5s',
    '    timeout check 500ms',
    ...Object.entries(backends).flatMap(([name, ports]) => [
      `backend ${name}`,
      '    option httpchk GET /health',
      '    default-server inter 100ms fall 1 rise 1',
      ...ports.map((p, i) => `    server s${i + 1} 127.0.0.1:${p} check`),
    ]),
    'listen stats',
    `    bind 127.0.0.1:${statsPort}`,
    '    stats enable',
    '    stats uri /stats',
    '',
  ];
  writeFileSync(cfg, lines.join('\n'));
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const ask = (command: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ path: socket });
      let out = '';
      s.on('connect', () => s.write(`${command}\n`));
      s.on('data', (d) => (out += d.toString()));
      s.on('error', reject);
      s.on('close', () => resolve(out));
    });
  const h: Haproxy = {
    child,
    socket,
    statsUrl: `http://127.0.0.1:${statsPort}/stats;csv`,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    async waitFor(ready, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      let csv = '';
      while (Date.now() < deadline) {
        try {
          csv = await ask('show stat');
          if (ready(csv)) return csv;
        } catch {
          // not up yet
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`haproxy did not reach the wanted state in ${timeoutMs} ms:\n${csv}\n${stderr}`);
    },
  };
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) throw new Error(`haproxy did not start: ${stderr}`);
  return h;
}

/** `status` of server `sv` of backend `px` in `show stat` CSV (by header name). */
export function serverStatus(csv: string, px: string, sv: string): string | undefined {
  const lines = csv.split('\n');
  const header = lines[0]!.replace(/^# /, '').split(',');
  const row = lines.find((l) => l.startsWith(`${px},${sv},`));
  return row?.split(',')[header.indexOf('status')];
}
