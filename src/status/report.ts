// `server.status`: the report assembled from the config, state.json, a probe of the run lock
// (waited on up to --wait while a run holds it) and the outbox counts; and the mode in force,
// which `server.mode` shows too.

import { join } from 'node:path';
import { Outbox } from '../callback/outbox.js';
import type { Config } from '../config/config.js';
import type { LockOwner, PidLock } from '../lock/pid-lock.js';
import type { EffectiveProduct } from '../products.js';
import { successOf } from '../state/state.js';
import type { Disabled, LastRun, LastVerify, LastSuccess, PausedRun, StateDoc } from '../state/state.js';
import { sleep } from '../util/process.js';
import { dropControls } from '../util/text.js';
import { readHeadSync } from '../util/files.js';

export interface ModeInfo {
  mode: string;
  origin: 'set' | 'default';
  modes: string[];
}

export interface StatusReport {
  server: string;
  config: string;
  stateDir: string;
  mode: string;
  modeOrigin: 'set' | 'default';
  provisioned: boolean;
  provisionedAt: string | null;
  /** declared_version: bootstrap.ini's, which an upgrade applies (products.ts: describeVersionDrift). */
  products: { name: string; version: string | null; declared_version: string | null; enabled: boolean }[];
  lastRun: LastRun | null;
  /** The last run that succeeded (kept across failed runs), and the failed or refused runs since. */
  lastSuccess: LastSuccess | null;
  failedRunsSinceSuccess: number;
  lock: { state: 'free' | 'held' | 'dead'; owner: LockOwner | null; path: string };
  lastCheckup: unknown;
  callbacks: { pending: number; oldestAgeSeconds: number | null; dead: number };
  /** The run that waits for a reboot one of its steps asked for, if any. */
  pausedRun: PausedRun | null;
  /** `server.disable`: runs are stopped until `server.enable`. */
  disabled: Disabled | null;
  /** The phases tree's version: the first line of its VERSION file (fleet/install.yml writes it), or null. */
  phasesVersion: string | null;
  /** The last `server.verify` (drift). */
  lastVerify: LastVerify | null;
}

/** What the report needs of the agent: `load` reads config and state, secrets registered. */
export interface StatusInputs {
  stateDir: string;
  phasesDir: string;
  runLock: PidLock;
  load(): Promise<{ config: Config; state: StateDoc; products: EffectiveProduct[] }>;
}

/** The mode in force and where it comes from (state.json, or the ini's default_mode). */
export function modeInfo(config: Config, state: StateDoc): ModeInfo {
  return { mode: state.mode ?? config.server.defaultMode, origin: state.mode ? 'set' : 'default', modes: config.server.modes };
}

/** The lock is probed (never taken), every 200 ms up to `waitMs` while a run holds it; then the rest is read. */
export async function statusReport(inputs: StatusInputs, options: { waitMs?: number | undefined } = {}): Promise<StatusReport> {
  const lock = inputs.runLock;
  const until = Date.now() + (options.waitMs ?? 0);
  let probe = await lock.probe();
  while (probe.state === 'held' && Date.now() < until) {
    await sleep(Math.min(200, until - Date.now()));
    probe = await lock.probe();
  }
  const { config, state, products } = await inputs.load();
  const { mode, origin } = modeInfo(config, state);
  const success = successOf(state);
  return {
    server: config.server.name,
    config: config.file,
    stateDir: inputs.stateDir,
    mode,
    modeOrigin: origin,
    provisioned: state.provisioned_at !== null,
    provisionedAt: state.provisioned_at,
    products: products.map((p) => ({ name: p.name, version: p.version, declared_version: p.declared_version, enabled: p.enabled })),
    lastRun: state.last_run,
    lastSuccess: success.last_success,
    failedRunsSinceSuccess: success.failed_runs_since_success,
    lock: { state: probe.state, owner: probe.state === 'free' ? null : probe.owner, path: lock.path },
    lastCheckup: state.last_checkup,
    callbacks: await new Outbox(inputs.stateDir).counts(),
    pausedRun: state.paused_run ?? null,
    disabled: state.disabled ?? null,
    phasesVersion: await phasesVersion(inputs.phasesDir),
    lastVerify: state.last_verify ?? null,
  };
}

/**
 * `VERSION` in the phases tree: its first line, trimmed, control characters dropped, at most 200
 * characters; null when there is none (a tree not placed by fleet/install.yml) or it is empty.
 */
export async function phasesVersion(phasesDir: string): Promise<string | null> {
  let text = '';
  try {
    text = readHeadSync(join(phasesDir, 'VERSION'), 4096).text; // a regular file, no symlink, never blocks
  } catch {
    // none, or not a file: no version
  }
  const line = dropControls(text.split('\n', 1)[0] ?? '').trim().slice(0, 200);
  return line === '' ? null : line;
}
