// The environment of steps: the agent's, the contract's BOOTSTRAP_* variables, and what the
// files of environment.d export. As under os-refresh-config, they are sourced again before each
// phase and before error.d (a value a phase wrote is seen by the next), in dib-run-parts' order;
// what they print goes to the log and never into the environment; each sourcing (one bash, run
// by util/child) is bounded like a step and stopped by the run's signal.

import { StepExit } from '../errors.js';
import { runChild } from '../util/child.js';
import { bashPath } from '../util/process.js';
import { spawnSizeProblem } from '../util/env-size.js';
import type { TextMasker } from './output.js';
import { settingValueToEnv } from '../config/setting-types.js';
import { settingEnvName, versionEnvName, type EffectiveProduct } from '../products.js';
import type { PhasesConfig } from '../config/config.js';
import type { Logger } from '../log/log.js';
import type { Plan, PhasePlan } from './plan.js';
import type { Failure } from './step-result.js';

export interface RunInfo {
  action: string;
  runId: string;
  server: string;
  mode: string;
  modePrevious?: string | undefined;
  product?: string | undefined;
  version?: string | undefined;
  versionPrevious?: string | null | undefined;
  products: EffectiveProduct[];
  configJson: string;
  stateDir: string;
  label?: string | undefined;
}

/**
 * The `NAME=value` every process of a run inherits (it is in the run's environment): what
 * carries it is swept at a timeout and at the end of the run, and by a takeover of a dead run.
 */
export function runMarker(runId: string): string {
  return `BOOTSTRAP_RUN_ID=${runId}`;
}

export function runEnvironment(base: NodeJS.ProcessEnv, info: RunInfo): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  const enabled = info.products.filter((p) => p.enabled);
  Object.assign(env, {
    BOOTSTRAP_ACTION: info.action,
    BOOTSTRAP_RUN_ID: info.runId,
    BOOTSTRAP_SERVER: info.server,
    BOOTSTRAP_MODE: info.mode,
    BOOTSTRAP_PRODUCTS: enabled.map((p) => p.name).join(','),
    BOOTSTRAP_CONFIG_JSON: info.configJson,
    BOOTSTRAP_STATE_DIR: info.stateDir,
  });
  if (info.modePrevious !== undefined) env['BOOTSTRAP_MODE_PREVIOUS'] = info.modePrevious;
  if (info.label !== undefined) env['BOOTSTRAP_LABEL'] = info.label;
  if (info.product !== undefined) {
    env['BOOTSTRAP_PRODUCT'] = info.product;
    env['BOOTSTRAP_VERSION'] = info.version ?? '';
    env['BOOTSTRAP_VERSION_PREVIOUS'] = info.versionPrevious ?? '';
  }
  // Every enabled product's version (an upgrade's: its target), on every action. Config
  // refuses a setting whose name would be the same variable (config.ts: checkEnvNames).
  for (const p of enabled) env[versionEnvName(p.name)] = p.version ?? '';
  for (const p of info.products) {
    for (const s of p.settings) {
      // Secrets never go to the environment: steps read them from BOOTSTRAP_CONFIG_JSON (0600).
      if (s.secret || s.value === null) continue;
      env[settingEnvName(p.name, s.name)] = settingValueToEnv(s.value);
    }
  }
  return env;
}

export function failureEnvironment(env: NodeJS.ProcessEnv, failure: Failure): NodeJS.ProcessEnv {
  return {
    ...env,
    BOOTSTRAP_FAILED_PHASE: failure.phase,
    BOOTSTRAP_FAILED_STEP: failure.step,
    BOOTSTRAP_FAILURE: failure.kind,
    BOOTSTRAP_FAILED_EXIT_CODE: failure.exitCode === null ? '' : String(failure.exitCode),
  };
}

export class EnvironmentFileError extends Error {
  constructor(
    readonly file: string,
    readonly kind: 'exit' | 'timeout' | 'signal',
    readonly detail: string,
  ) {
    super(`environment file ${file} failed: ${detail}`);
  }
}

/** A phase's environment, or the failure of the environment.d file that broke it. */
export async function sourcedEnvironment(
  environment: (phase: PhasePlan['phase'], cleanup: boolean) => Promise<NodeJS.ProcessEnv>,
  phase: PhasePlan['phase'],
  cleanup: boolean,
): Promise<{ env: NodeJS.ProcessEnv } | { failure: Failure }> {
  try {
    return { env: await environment(phase, cleanup) };
  } catch (err) {
    if (!(err instanceof EnvironmentFileError)) throw err;
    return { failure: { phase, step: `environment.d/${err.file.split('/').at(-1)}`, kind: err.kind, exitCode: null, message: err.message } };
  }
}

// The dump goes to fd 3 after a blank line that ends the progress marks; the files' own output
// (stdout and stderr) goes to the log. Each file is sourced with fd 3 closed.
const sourceScript = `for __bootstrap_env_file in "$@"; do
  printf '%s\\n' "$__bootstrap_env_file" >&3
  . "$__bootstrap_env_file" 3>&- || exit $?
done
printf '\\n' >&3
command -p env -0 >&3`;

const shellNoise = new Set(['_', 'SHLVL', 'PWD', 'OLDPWD']);

/**
 * A bound on the environment dump (only to keep the agent's memory bounded): no environment
 * larger than this could start a step anyway (Linux takes at most a quarter of the stack limit).
 */
const maxDumpBytes = 64 * 1024 * 1024;

export interface SourceOptions {
  /** Bound on the whole sourcing. */
  timeoutMs: number;
  killGraceMs: number;
  /** Stops it (the run's SIGINT/SIGTERM). */
  signal?: AbortSignal | undefined;
  /** Each line the files print, secrets masked. */
  onLine?: ((line: string) => void) | undefined;
  masker: TextMasker;
  /** `NAME=value` of the run: what the files leave running is swept at a timeout. */
  marker?: string | undefined;
}

/**
 * Sources the files in one bash and returns the environment that results: variables the files
 * export are added or changed, those they unset are removed.
 */
async function sourceEnvironmentFiles(files: string[], env: NodeJS.ProcessEnv, cwd: string, o: SourceOptions): Promise<NodeJS.ProcessEnv> {
  if (files.length === 0) return env;
  const bash = bashPath(env);
  if (!bash) throw new EnvironmentFileError(files[0]!, 'exit', 'bash not found (looked in /bin, /usr/bin and PATH)');
  const args = ['--noprofile', '--norc', '-c', sourceScript, 'environment.d', ...files];
  const tooBig = spawnSizeProblem([bash, ...args], env);
  if (tooBig) throw new EnvironmentFileError(files[0]!, 'exit', `cannot start bash to source it: ${tooBig}`);
  const r = await runChild({
    file: bash,
    args,
    cwd,
    env,
    timeoutMs: o.timeoutMs,
    killGraceMs: o.killGraceMs,
    signal: o.signal,
    onLine: o.onLine,
    masker: o.masker,
    // The files are sourced with fd 3 closed, but bash keeps a saved copy of it meanwhile, which a
    // background job a file starts in a subshell inherits: fd 3 then outlives bash, and what
    // bash dumped is read for child.ts's drain time (1 s) after it exits.
    collectFd3: maxDumpBytes,
    // What the files leave running lives on (swept with the run); at a timeout it goes, by the run's marker.
    marker: o.marker ?? null,
    keepLeftovers: true,
  });
  if (r.error) o.onLine?.(o.masker.mask(`cannot start ${bash}: ${r.error}`));
  const code = r.error ? StepExit.notFound : r.code;
  const text = r.fd3.toString('utf8');
  const split = text.indexOf('\n\n');
  const marks = (split >= 0 ? text.slice(0, split) : text).split('\n').filter((m) => m !== '');
  const failed = marks.at(-1) ?? files[0]!;
  if (r.stopped === 'timeout' || r.stopped === 'abort') throw new EnvironmentFileError(failed, r.stopped === 'timeout' ? 'timeout' : 'signal', r.stopped === 'timeout' ? `timed out after ${(o.timeoutMs / 1000).toFixed(1)} s (killed)` : 'stopped: the agent was asked to stop');
  if (r.stopped === 'output') throw new EnvironmentFileError(failed, 'exit', `what environment.d exports is more than ${maxDumpBytes / 1024 / 1024} MiB`);
  if (code !== StepExit.ok || split < 0) throw new EnvironmentFileError(failed, r.signal ? 'signal' : 'exit', r.signal ? `killed by ${r.signal}` : `exit ${code}`);
  const result: NodeJS.ProcessEnv = {};
  for (const entry of text.slice(split + 2).split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (!shellNoise.has(key) || Object.hasOwn(env, key)) result[key] = entry.slice(eq + 1);
  }
  for (const key of shellNoise) if (Object.hasOwn(env, key)) result[key] = env[key];
  // What the files export must still let steps start: checked here, naming the files, not at the first step.
  const tooLarge = spawnSizeProblem([], result);
  if (tooLarge) throw new EnvironmentFileError(failed, 'exit', `what environment.d exports leaves no room to start a step: ${tooLarge}`);
  return result;
}

/** How long a phase's sourcing may take and what stops it: a step phase's, or clean-up's. */
export type PhaseBound = { signal?: AbortSignal | undefined; deadline?: number | undefined } | { cleanup: AbortSignal };

/**
 * A phase's environment: environment.d sourced again over the run's. Steps' phases are bounded
 * like a step within the run's deadline and stopped by the run's signal; clean-up (backouts,
 * error.d) by cleanup_timeout and only a second signal.
 */
export function phaseEnvironment(
  o: { plan: Plan; phases: PhasesConfig; log: Logger; baseEnv: NodeJS.ProcessEnv; marker: string },
  phase: string,
  bound: PhaseBound,
): Promise<NodeJS.ProcessEnv> {
  const cleanup = 'cleanup' in bound;
  const left = cleanup || bound.deadline === undefined ? Infinity : bound.deadline - Date.now();
  return sourceEnvironmentFiles(o.plan.environment.files, { ...o.baseEnv, BOOTSTRAP_PHASE: phase }, o.plan.baseDir, {
    timeoutMs: cleanup ? o.phases.cleanupTimeoutMs : Math.max(0, Math.min(o.phases.scriptTimeoutMs, left)),
    killGraceMs: o.phases.killGraceMs,
    signal: cleanup ? bound.cleanup : bound.signal,
    onLine: (line) => o.log.step(`${phase}/environment.d`, line),
    masker: o.log.masker,
    marker: o.marker,
  });
}
