// The network side of checks. A bounded GET: the whole exchange, body included, ends by the
// signal (a peer that accepts and never answers, or dribbles bytes, cannot hold a check past its
// timeout). node:http and node:https (with tls) are loaded here, on first use: ~5 ms that every
// other command would pay at start-up. (createRequire, not import(): the bundle runs as a script.)
// Also: the http(s) URL a kind's `url` must be, and network errors in words.

import { createRequire } from 'node:module';
import { ConfigError } from '../errors.js';
import { parseSettingValue } from '../config/setting-types.js';
import { redactUrl } from '../util/url.js';

export interface HttpResult {
  status: number;
  body: string;
}

export function httpGet(url: string, signal: AbortSignal, maxBytes: number): Promise<HttpResult> {
  const load = createRequire(import.meta.url);
  const { request } = url.startsWith('https:') ? (load('node:https') as typeof import('node:https')) : (load('node:http') as typeof import('node:http'));
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', signal, headers: { 'user-agent': 'bootstrap-agent heartbeat', connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size <= maxBytes) chunks.push(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => reject(signal.aborted ? new Error('no answer in time') : err));
    req.end();
  });
}

/** Refuses (78) a `url` that is not an http(s) URL; `where` is the section. */
export function checkHttpUrl(where: string, url: string): void {
  if (!/^https?:\/\//.test(url) || !parseSettingValue({ kind: 'url' }, url).ok) throw new ConfigError(`[${where}] url: '${redactUrl(url)}' is not an http(s) URL`);
}

export function networkError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ECONNRESET') return 'connection reset';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `cannot resolve host (${e.code})`;
  return e.message;
}
