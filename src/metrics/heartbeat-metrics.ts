// What `bootstrap_heartbeat.prom` says: the last checkup as state.json keeps it (last_checkup),
// written by heartbeat.checkup only, the command the heartbeat timer runs. heartbeat.get is not a
// writer: it records nothing and may check a few checks only, so the file would not change or
// would drop checks. A check whose `modes` leave out the mode in force was not run: it has no
// bootstrap_heartbeat_up series (no verdict, neither up nor down), and bootstrap_heartbeat_not_run
// says so.

import type { Checkup } from '../heartbeat/types.js';
import type { StateDoc } from '../state/state.js';
import type { Family } from './render.js';
import { epochSeconds, gauge } from './run-metrics.js';

export function heartbeatFamilies(state: StateDoc): Family[] {
  // Shape-checked when state.json was read (state/state.ts).
  const checkup = state.last_checkup as Checkup | null;
  const results = checkup?.results ?? [];
  return [
    gauge('bootstrap_heartbeat_up', '1 if the check was healthy at the last heartbeat.checkup, else 0; no series for a check not run (not of the mode in force).', results.map((r) => ({ labels: { check: r.name }, value: r.healthy ? 1 : 0 }))),
    gauge('bootstrap_heartbeat_not_run', '1 for a check the last heartbeat.checkup did not run: its [heartbeat.NAME] modes leave out the mode in force.', (checkup?.not_run ?? []).map((n) => ({ labels: { check: n.name }, value: 1 }))),
    gauge('bootstrap_heartbeat_latency_seconds', 'How long each check took at the last heartbeat.checkup.', results.map((r) => ({ labels: { check: r.name }, value: r.latency_ms / 1000 }))),
    gauge('bootstrap_heartbeat_healthy', '1 if every check was healthy at the last heartbeat.checkup; 0 if one was not or none ran yet.', checkup?.healthy ? 1 : 0),
    gauge('bootstrap_heartbeat_last_checkup_timestamp_seconds', 'When the last heartbeat.checkup finished; 0: none yet.', epochSeconds(checkup?.finished_at)),
  ];
}
