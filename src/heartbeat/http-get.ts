// A bounded GET for health checks: the whole exchange, body included, ends by the signal (a peer
// that accepts and never answers, or dribbles bytes, cannot hold a check past its timeout).

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpResult {
  status: number;
  body: string;
}

export function httpGet(url: string, signal: AbortSignal, maxBytes: number): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
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
