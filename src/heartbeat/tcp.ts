// The tcp kind: healthy when a connection to `address` (host:port, [v6]:port) opens in time.

import { ConfigError } from '../errors.js';
import { networkError } from './net.js';
import type { CheckContext, CheckVerdict, HeartbeatKind, SectionReader, SpecBase } from './types.js';
import { net } from '../util/lazy.js';

export interface TcpSpec extends SpecBase {
  type: 'tcp';
  address: { host: string; port: number };
}

function parse(r: SectionReader, base: SpecBase): TcpSpec {
  const address = r.str('address') ?? '';
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`[${r.where}] address: '${address}' is not host:port`, 'e.g. address = 127.0.0.1:7070');
  return { ...base, type: 'tcp', address: { host: (m[1] ?? m[2])!, port } };
}

function check(spec: TcpSpec, { signal }: CheckContext): Promise<CheckVerdict> {
  const { host, port } = spec.address;
  return new Promise((resolve) => {
    const socket = net().connect({ host, port });
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

export const tcp: HeartbeatKind<TcpSpec> = { keys: ['address'], parse, check };
