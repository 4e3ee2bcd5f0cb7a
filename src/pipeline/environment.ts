// The environment of steps: the agent's, the contract's BOOTSTRAP_* variables, and what the
// files of environment.d export (sourced by bash in `sort -n` order, as dib-run-parts does).

import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { settingValueToEnv } from '../config/setting-types.js';
import type { EffectiveProduct } from '../products.js';

export interface RunFacts {
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
}

export interface Failure {
  phase: string;
  step: string;
  kind: 'exit' | 'signal' | 'timeout' | 'check' | 'heartbeat';
  exitCode: number | null;
  message: string;
}

/** `BOOTSTRAP_<PRODUCT>_<SETTING>`: upper case, any other character → `_`. */
export function settingEnvName(product: string, setting: string): string {
  return `BOOTSTRAP_${product}_${setting}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

export function runEnvironment(base: NodeJS.ProcessEnv, facts: RunFacts): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  const enabled = facts.products.filter((p) => p.enabled);
  Object.assign(env, {
    BOOTSTRAP_ACTION: facts.action,
    BOOTSTRAP_RUN_ID: facts.runId,
    BOOTSTRAP_SERVER: facts.server,
    BOOTSTRAP_MODE: facts.mode,
    BOOTSTRAP_PRODUCTS: enabled.map((p) => p.name).join(','),
    BOOTSTRAP_CONFIG_JSON: facts.configJson,
    BOOTSTRAP_STATE_DIR: facts.stateDir,
  });
  if (facts.modePrevious !== undefined) env['BOOTSTRAP_MODE_PREVIOUS'] = facts.modePrevious;
  if (facts.product !== undefined) {
    env['BOOTSTRAP_PRODUCT'] = facts.product;
    env['BOOTSTRAP_VERSION'] = facts.version ?? '';
    env['BOOTSTRAP_VERSION_PREVIOUS'] = facts.versionPrevious ?? '';
  }
  for (const p of facts.products) {
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
    readonly detail: string,
  ) {
    super(`environment file ${file} failed: ${detail}`);
  }
}

const sourceScript = `for __bootstrap_env_file in "$@"; do
  printf '%s\\n' "$__bootstrap_env_file" >&3
  . "$__bootstrap_env_file" || exit $?
done
printf '\\n' >&3
exec env -0`;

const shellNoise = new Set(['_', 'SHLVL', 'PWD', 'OLDPWD']);

/**
 * Sources the files in one bash and returns the environment that results: variables the files
 * export are added or changed, those they unset are removed.
 */
export async function sourceEnvironmentFiles(files: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<NodeJS.ProcessEnv> {
  if (files.length === 0) return env;
  const child = spawn('bash', ['-c', sourceScript, 'environment.d', ...files], { cwd, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  let progress = '';
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  (child.stdio[3] as Readable).setEncoding('utf8').on('data', (d: string) => (progress += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  const marks = progress.split('\n');
  if (code !== 0 || marks.at(-2) !== '') {
    const failed = marks.filter((m) => m !== '').at(-1) ?? files[0]!;
    const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (timed out?)' : ''}` : `exit ${code}`;
    throw new EnvironmentFileError(failed, `${why}${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`);
  }
  const result: NodeJS.ProcessEnv = {};
  for (const entry of Buffer.concat(chunks).toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (!shellNoise.has(key) || Object.hasOwn(env, key)) result[key] = entry.slice(eq + 1);
  }
  for (const key of shellNoise) if (Object.hasOwn(env, key)) result[key] = env[key];
  return result;
}
