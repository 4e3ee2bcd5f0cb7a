// Placeholder pages: the JSON in a <pre>, until the real pages land (same signatures).

import type { FleetView, ServerView } from './view.js';

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderFleetPage(v: FleetView): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Fleet</title></head><body><pre>${escape(JSON.stringify(v, null, 2))}</pre></body></html>`;
}

export function renderServerPage(v: ServerView): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(v.server.server)}</title></head><body><pre>${escape(JSON.stringify(v, null, 2))}</pre></body></html>`;
}
