// The HTTP side: routes, bounded request time (Node answers 408 itself past requestTimeout), one
// log line per request with the path only (a query string may carry what should not be logged).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fleetView, serverRow } from './fleet.js';
import { receiveCallback, type Answer, type Intake } from './intake.js';
import { renderMetrics } from './metrics.js';
import { pagePolicy, parseFleetQuery, renderFleetPage, renderServerPage } from './pages.js';
import type { FleetView, ServerView } from './view.js';

export interface App extends Intake {
  unresponsiveAfterMs: number;
  requestTimeoutMs: number;
  log(line: string): void;
  /** Log refused requests only, not each stored callback. */
  quiet: boolean;
  /** Test seam (BOOTSTRAP_RECEIVER_TEST_STALL_AFTER_STORE): store, then never answer. */
  stallAfterStore?: boolean;
}

export const callbackPath = '/callback';

async function fleet(app: App): Promise<FleetView> {
  return fleetView(await app.store.servers(), Date.now(), app.unresponsiveAfterMs);
}

async function serverView(app: App, name: string, runs: number): Promise<ServerView | null> {
  const rec = await app.store.server(name);
  if (!rec) return null;
  const now = Date.now();
  return { generated_at: new Date(now).toISOString(), server: serverRow(rec, now, app.unresponsiveAfterMs), runs: await app.store.runs(name, runs) };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  // Pages also carry their policy as a header: it then holds for the whole response, not only
  // from the <meta> on.
  const policy = type === html ? { 'content-security-policy': pagePolicy } : {};
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...policy });
  res.end(body);
}

/** A path segment decoded, or null when its %-escapes are malformed (a 404, not a 500). */
function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

const sendJson = (res: ServerResponse, status: number, v: unknown) => send(res, status, 'application/json', `${JSON.stringify(v)}\n`);
const html = 'text/html; charset=utf-8';

/** The answer to a GET, or null for an unknown path. */
async function get(app: App, path: string, query: URLSearchParams, res: ServerResponse): Promise<boolean> {
  const runs = Math.min(Math.max(Math.trunc(Number(query.get('runs') ?? 20)) || 20, 1), 1000); // an integer: LIMIT 1.5 is an SQL error
  const server = /^\/(api\/)?servers\/([^/]+)$/.exec(path);
  if (path === '/healthz') {
    await app.store.db.all('SELECT 1 AS ok');
    send(res, 200, 'text/plain', 'ok\n');
  } else if (path === '/api/fleet') sendJson(res, 200, await fleet(app));
  else if (path === '/') send(res, 200, html, renderFleetPage(await fleet(app), parseFleetQuery(query)));
  else if (path === '/metrics') send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', renderMetrics(await fleet(app), app.counters));
  else if (server) {
    const name = decoded(server[2]!);
    const view = name === null ? null : await serverView(app, name, runs);
    if (!view) sendJson(res, 404, { error: 'no such server' });
    else if (server[1]) sendJson(res, 200, view);
    else send(res, 200, html, renderServerPage(view, { runs }));
  } else return false;
  return true;
}

async function handle(app: App, req: IncomingMessage, res: ServerResponse): Promise<string> {
  const url = new URL(req.url ?? '/', 'http://receiver');
  if (req.method === 'POST' && url.pathname === callbackPath) {
    const answer: Answer = await receiveCallback(req, app);
    if (app.stallAfterStore && answer.status === 200) return `${answer.note}; stalled (test seam)`;
    sendJson(res, answer.status, answer.body);
    return answer.note;
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (await get(app, url.pathname, url.searchParams, res)) return '';
    sendJson(res, 404, { error: 'not found' });
    return '';
  }
  res.setHeader('allow', url.pathname === callbackPath ? 'POST' : 'GET, HEAD');
  sendJson(res, 405, { error: 'method not allowed' });
  return '';
}

/** A log line shows control characters (a server name or delivery id may carry them), never acts on them. */
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function createReceiverServer(app: App): Server {
  // connectionsCheckingInterval: how often Node looks for requests past their time (default 30 s).
  const server = createServer({ requestTimeout: app.requestTimeoutMs, headersTimeout: Math.min(app.requestTimeoutMs, 60_000), connectionsCheckingInterval: 1000 }, (req, res) => {
    const started = performance.now();
    const path = (req.url ?? '/').replace(/\?.*$/s, '');
    handle(app, req, res).then(
      (note) => {
        if ((req.method === 'POST' && !app.quiet) || res.statusCode >= 400) app.log(printable(`${req.method} ${path} ${res.statusCode} ${(performance.now() - started).toFixed(1)} ms${note ? ` ${note}` : ''}`));
      },
      (err: Error) => {
        app.log(printable(`${req.method} ${path} 500: ${err.message}`));
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      },
    );
  });
  // A request not read whole in time: Node answers 408 (which the agent retries) and closes.
  server.requestTimeout = app.requestTimeoutMs;
  return server;
}
