// /metrics in Prometheus' text format: the fleet by state (read from the database at each
// scrape, so every receiver on one PostgreSQL tells the same) and this process's counters of
// what it received (since it started, as counters are).

import { serverStates } from './fleet.js';
import type { FleetView } from './view.js';

export type Refusal = 'signature' | 'too_large' | 'malformed' | 'invalid' | 'key_unusable' | 'store_error';

export class Counters {
  /** `kind status` → callbacks stored. */
  readonly received = new Map<string, number>();
  duplicates = 0;
  /** Callbacks older than --retain: acknowledged, not stored. */
  expired = 0;
  readonly refused: Record<Refusal, number> = { signature: 0, too_large: 0, malformed: 0, invalid: 0, key_unusable: 0, store_error: 0 };
  pruned = 0;

  stored(kind: string, status: string): void {
    const key = `${kind} ${status}`;
    this.received.set(key, (this.received.get(key) ?? 0) + 1);
  }
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function family(name: string, type: 'gauge' | 'counter', help: string, samples: [string, number][]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples.map(([labels, v]) => `${name}${labels} ${v}`)].join('\n');
}

export function renderMetrics(fleet: FleetView, c: Counters): string {
  const received = [...c.received].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]): [string, number] => {
    const [kind, status] = key.split(' ');
    return [`{kind="${esc(kind!)}",status="${esc(status!)}"}`, n];
  });
  return (
    [
      family('bootstrap_receiver_servers', 'gauge', 'Servers by state (unresponsive: no callback within --unresponsive-after).', serverStates.map((s) => [`{state="${s}"}`, fleet.counts[s]])),
      family('bootstrap_receiver_unresponsive_after_seconds', 'gauge', 'The threshold after which a silent server is unresponsive.', [['', fleet.unresponsive_after_s]]),
      family('bootstrap_receiver_callbacks_received_total', 'counter', 'Callbacks stored, by kind and status.', received),
      family('bootstrap_receiver_callbacks_duplicate_total', 'counter', 'Redelivered callbacks (a delivery id already stored): acknowledged, not stored again.', [['', c.duplicates]]),
      family('bootstrap_receiver_callbacks_expired_total', 'counter', 'Callbacks that finished before the history kept (--retain): acknowledged, not stored.', [['', c.expired]]),
      family('bootstrap_receiver_signature_failures_total', 'counter', 'Callbacks refused with 401: signature missing or wrong.', [['', c.refused.signature]]),
      family('bootstrap_receiver_callbacks_refused_total', 'counter', 'Callbacks refused, by reason (signature 401, too_large 413, malformed and invalid 400, key_unusable 503, store_error 500).', Object.entries(c.refused).map(([r, n]) => [`{reason="${r}"}`, n])),
      family('bootstrap_receiver_pruned_total', 'counter', 'Stored callbacks deleted by retention.', [['', c.pruned]]),
    ].join('\n') + '\n'
  );
}
