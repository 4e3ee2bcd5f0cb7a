// Writing the metrics of one writer: `run` (bootstrap.prom: runs, pauses, refusals, verify,
// disable/enable, callback.flush) or `heartbeat` (bootstrap_heartbeat.prom: heartbeat.checkup).
// One file per writer: the run and heartbeat timers never write the same file. Off when
// [metrics] textfile_dir is unset. Never throws: metrics never change a command's outcome.

import { Outbox } from '../callback/outbox.js';
import type { Config } from '../config/config.js';
import { BootstrapError } from '../errors.js';
import type { Logger } from '../log/log.js';
import type { StepCounts } from '../state/journal.js';
import type { StateDoc, StateStore } from '../state/state.js';
import { readVersion } from '../version.js';
import { heartbeatFamilies } from './heartbeat-metrics.js';
import { renderFamilies, type Family } from './render.js';
import { lastRunSteps, runFamilies } from './run-metrics.js';
import { TextfileWriteError, writeTextfile } from './textfile.js';

export type MetricsKind = 'run' | 'heartbeat';

export const metricsFiles: Record<MetricsKind, string> = { run: 'bootstrap.prom', heartbeat: 'bootstrap_heartbeat.prom' };

/** What the metrics are read from: the agent's config, state dir and state store. */
export interface MetricsSource {
  config: Config;
  stateDir: string;
  store: StateStore;
}

/**
 * Rewrites the file of `kind` from what is on disk now. `source` is called here: a config that
 * cannot be read writes nothing (the command itself says why). Anything else that fails is one
 * warning naming the file, the reason and what to do.
 */
export async function writeMetrics(kind: MetricsKind, source: () => MetricsSource, log: Logger): Promise<void> {
  let src: MetricsSource;
  try {
    src = source();
  } catch {
    return;
  }
  const dir = src.config.metrics.textfileDir;
  if (!dir) return;
  try {
    writeTextfile(dir, metricsFiles[kind], renderFamilies(await familiesOf(kind, src)));
  } catch (err) {
    const why = err instanceof TextfileWriteError ? err.message : `cannot read what ${metricsFiles[kind]} says: ${describe(err)}`;
    log.warn(`metrics not written: ${why}`);
  }
}

export async function familiesOf(kind: MetricsKind, src: MetricsSource): Promise<Family[]> {
  if (kind === 'heartbeat') return heartbeatFamilies(await src.store.read());
  // The outbox is read beside state.json and the journal it names: each read is a thread-pool round trip.
  const [{ state, steps }, callbacks] = await Promise.all([stateAndSteps(src), callbackCounts(src.stateDir)]);
  const { server } = src.config;
  return runFamilies({ state, steps, callbacks, version: readVersion(), mode: state.mode ?? server.defaultMode, server: server.name });
}

async function stateAndSteps(src: MetricsSource): Promise<{ state: StateDoc; steps: StepCounts | null }> {
  const state = await src.store.read();
  return { state, steps: await lastRunSteps(src.stateDir, state) };
}

/** server.status's counts (callback/outbox.ts) without reading the oldest callback for its age. */
async function callbackCounts(stateDir: string): Promise<{ pending: number; dead: number }> {
  const outbox = new Outbox(stateDir);
  const [names, dead] = await Promise.all([outbox.names(), outbox.deadCount()]);
  return { pending: names.length, dead };
}

function describe(err: unknown): string {
  return err instanceof BootstrapError ? err.describe() : err instanceof Error ? err.message : String(err);
}
