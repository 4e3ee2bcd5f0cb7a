// The http kind: a GET of `url`, healthy on the expected status (default 200) and, with
// `expect_body`, a body that matches that regular expression.

import { ConfigError } from '../errors.js';
import { checkHttpUrl, httpGet, networkError } from './net.js';
import type { CheckContext, CheckVerdict, HeartbeatKind, SectionReader, SpecBase } from './types.js';

export interface HttpSpec extends SpecBase {
  type: 'http';
  url: string;
  expectStatus: number;
  expectBody: string | undefined;
}

function parse(r: SectionReader, base: SpecBase): HttpSpec {
  const url = r.str('url');
  if (!url) throw new ConfigError(`[${r.where}] url: missing`, 'an http check needs url = http://...');
  checkHttpUrl(r.where, url);
  const expectStatus = r.int('expect_status', 200, 100);
  const expectBody = r.str('expect_body') || undefined;
  if (expectBody !== undefined) {
    try {
      new RegExp(expectBody);
    } catch (err) {
      throw new ConfigError(`[${r.where}] expect_body: not a regular expression: ${(err as Error).message}`);
    }
  }
  return { ...base, type: 'http', url, expectStatus, expectBody };
}

async function check(spec: HttpSpec, { signal }: CheckContext): Promise<CheckVerdict> {
  try {
    const res = await httpGet(spec.url, signal, 1024 * 1024);
    const want = spec.expectStatus;
    if (res.status !== want) return { healthy: false, detail: `HTTP ${res.status}, expected ${want}` };
    if (spec.expectBody && !new RegExp(spec.expectBody).test(res.body)) return { healthy: false, detail: `HTTP ${res.status}, but the body does not match /${spec.expectBody}/` };
    return { healthy: true, detail: `HTTP ${res.status}` };
  } catch (err) {
    return { healthy: false, detail: networkError(err) };
  }
}

export const http: HeartbeatKind<HttpSpec> = { keys: ['url', 'expect_status', 'expect_body'], parse, check };
