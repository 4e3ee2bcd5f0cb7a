// What a run (and a fact collection outside one) needs of the agent: its config, paths, state
// store, run lock, environment, log, command line and callback reporter. `Agent` builds it;
// nothing under src/run/ imports agent.ts. With it, the few things a run (and the agent's other
// commands) ask of the config: the plan of the phases dir, the programs bootstrap.ini names and
// their trust, the secrets to mask.

import type { CallbackReporter } from '../callback/reporter.js';
import { callbackKeyToMask } from '../callback/deliver.js';
import type { Config, HeartbeatSpec } from '../config/config.js';
import type { PidLock } from '../lock/pid-lock.js';
import type { Logger } from '../log/log.js';
import { planPhases, refusalOf, refusedPrograms, type ConfiguredProgram, type Plan } from '../pipeline/plan.js';
import { effectiveProducts, secretValues, type EffectiveProduct } from '../products.js';
import type { StateStore } from '../state/state.js';

export interface RunContext {
  readonly config: Config;
  readonly stateDir: string;
  readonly phasesDir: string;
  readonly store: StateStore;
  readonly runLock: PidLock;
  /** The environment the agent reads and steps inherit. */
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** Recorded in the lock owner record, state.json and journals. */
  readonly commandLine: string;
  readonly callbacks: CallbackReporter;
}

/** `phases.list`: the plan of the phases dir, with every skipped file and why. */
export function planOf(ctx: Pick<RunContext, 'config' | 'phasesDir' | 'env'>): Plan {
  return planPhases(ctx.phasesDir, { noShebang: ctx.config.phases.noShebang, programs: configuredPrograms(ctx.config), env: ctx.env });
}

/** The programs bootstrap.ini names (reboot_command, exec checks): they run as root, so they are judged as steps are. */
function configuredPrograms(config: Config, specs: HeartbeatSpec[] = [...config.heartbeats.values()]): ConfiguredProgram[] {
  const exec = specs.filter((s) => s.type === 'exec').map((s) => ({ key: `[heartbeat.${s.name}] command`, argv: s.command! }));
  return [{ key: '[phases] reboot_command', argv: config.phases.rebootCommand }, ...exec];
}

/**
 * The checks, once the programs of their exec checks passed the trust rules of steps: 77
 * naming the key otherwise (allow_insecure: run, loudly), as a run refuses its plan.
 */
export function trustedChecks(ctx: Pick<RunContext, 'config' | 'env' | 'log'>, specs: HeartbeatSpec[]): HeartbeatSpec[] {
  const refused = refusedPrograms(configuredPrograms(ctx.config, specs).filter((p) => p.key.startsWith('[heartbeat.')), ctx.env);
  const refusal = refusalOf(refused, ctx.config.phases.allowInsecure);
  if (refusal) throw refusal;
  for (const r of refused) ctx.log.warn(`INSECURE (allow_insecure = true): running ${r.path} (named by ${r.key}), ${r.reason}`);
  return specs;
}

/**
 * Registers for masking the secret settings of `products` and the callback key, together:
 * every command that may log what a program says (a run, a dry run, facts, heartbeats)
 * calls this once the config is read, so a step printing the key shows `********`.
 */
export function maskSecrets(ctx: Pick<RunContext, 'config' | 'log'>, products: EffectiveProduct[]): void {
  ctx.log.addSecrets(secretValues(products));
  const key = callbackKeyToMask(ctx.config.callback.secretFile);
  if (key) ctx.log.addSecrets([key]);
}

/**
 * The secrets in force, registered for masking where a command shows what a program said (an
 * exec heartbeat's output, explorers'). State that cannot be read registers only the callback
 * key and fails nothing here: the command reports it where it reads state itself.
 */
export async function registerSecrets(ctx: Pick<RunContext, 'config' | 'log' | 'store'>): Promise<void> {
  await ctx.store
    .read()
    .then((state) => maskSecrets(ctx, effectiveProducts(ctx.config, state)))
    .catch(() => maskSecrets(ctx, []));
}
