// Human output of the commands (the --json output is the data itself).

import type { StatusReport } from '../agent.js';
import type { EffectiveProduct } from '../products.js';

export function formatSettingValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  return String(value);
}

export function formatProducts(products: EffectiveProduct[], showOrigin: boolean): string {
  const lines: string[] = [];
  for (const p of products) {
    lines.push(`${p.name} ${p.version ?? '(no version)'}${p.enabled ? '' : ' (disabled)'}`);
    const width = Math.max(0, ...p.settings.map((s) => s.name.length));
    for (const s of p.settings) {
      const value = s.value === null ? '(unset)' : formatSettingValue(s.value);
      lines.push(`  ${s.name.padEnd(width)} = ${value}${showOrigin ? `\t(${s.origin}, ${s.type})` : ''}`);
    }
  }
  return lines.join('\n');
}

export function formatStatus(s: StatusReport): string {
  const rows: [string, string][] = [
    ['server', s.server],
    ['mode', `${s.mode}${s.modeOrigin === 'default' ? ' (default)' : ''}`],
    ['provisioned', s.provisionedAt ? `yes, ${s.provisionedAt}` : 'no'],
    ['products', s.products.map((p) => `${p.name} ${p.version ?? '?'}${p.enabled ? '' : ' (disabled)'}`).join(', ') || '(none declared)'],
    ['last run', s.lastRun ? `${s.lastRun.action} ${s.lastRun.status} at ${s.lastRun.finished_at} (${(s.lastRun.duration_ms / 1000).toFixed(1)} s, run ${s.lastRun.id})` : 'none'],
    ['lock', formatLock(s.lock)],
    ['heartbeat', formatCheckup(s.lastCheckup)],
    ['callbacks', `${s.callbacks.pending} pending${s.callbacks.oldestAgeSeconds !== null ? `, oldest ${s.callbacks.oldestAgeSeconds} s old` : ''}${s.callbacks.dead ? `, ${s.callbacks.dead} dead` : ''}`],
    ['state dir', s.stateDir],
    ['config', s.config],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(13)}${v}`).join('\n');
}

function formatLock(lock: StatusReport['lock']): string {
  if (lock.state === 'free') return 'free';
  if (!lock.owner) return `being taken (${lock.path})`;
  const who = `${lock.owner.command} (pid ${lock.owner.pid}, started ${lock.owner.startedAt})`;
  return lock.state === 'dead' ? `left by a dead process: ${who}; the next run takes it over` : `held by ${who}`;
}

function formatCheckup(checkup: unknown): string {
  const c = checkup as { healthy?: boolean; finished_at?: string; results?: { name: string; healthy: boolean }[] } | null;
  if (!c || typeof c !== 'object') return 'never checked';
  const bad = (c.results ?? []).filter((r) => !r.healthy).map((r) => r.name);
  return `${c.healthy ? 'healthy' : `unhealthy (${bad.join(', ')})`} at ${c.finished_at ?? '?'}`;
}
