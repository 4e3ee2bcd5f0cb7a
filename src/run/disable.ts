// `server.disable --reason` / `server.enable`, and the gate every run command passes first. The
// record is state.json's `disabled` {since, by, reason}, changed under the state lock (not the
// run lock: disabling during a long run works, and stops the next run).

import { DisabledError, UsageError } from '../errors.js';
import { hasControls, showControls } from '../util/text.js';
import type { Logger } from '../log/log.js';
import { effectiveProducts } from '../products.js';
import type { Disabled, StateDoc } from '../state/state.js';
import { maskSecrets, type RunContext } from './context.js';
import { os } from '../util/lazy.js';

/** The longest reason, in characters: one line an operator writes, shown in status and alerts. */
export const maxReasonChars = 500;
const maxUserChars = 64;

/** The reason as stored: trimmed, 1..500 characters, one line without control characters (else 64). */
export function validateReason(reason: unknown): string {
  const hint = 'e.g. --reason "kernel upgrade, ticket OPS-123"';
  if (typeof reason !== 'string' || reason.trim() === '') throw new UsageError('server.disable needs --reason TEXT: why, for whoever finds the server disabled', hint);
  const text = reason.trim();
  if (hasControls(text)) throw new UsageError('--reason: one line without control characters', hint);
  const chars = [...text].length;
  if (chars > maxReasonChars) throw new UsageError(`--reason: ${chars} characters; at most ${maxReasonChars}`, 'say it shorter, or point to a ticket');
  return text;
}

/**
 * Who runs this: `SUDO_USER` under sudo, else the login name of the uid (none: the uid alone),
 * with the uid: `alice (uid 0, via sudo)`, `root (uid 0)`. Informational (the environment can
 * say anything), bounded and shown escaped.
 */
export function operatorName(env: NodeJS.ProcessEnv, uid = process.getuid?.() ?? 0): string {
  const sudo = env['SUDO_USER'];
  if (sudo) return `${shortName(sudo)} (uid ${uid}, via sudo)`;
  let login: string | null = null;
  try {
    login = os().userInfo().username;
  } catch {
    // no passwd entry for this uid (a container's arbitrary uid)
  }
  return login ? `${shortName(login)} (uid ${uid})` : `uid ${uid}`;
}

function shortName(name: string): string {
  const shown = showControls(name);
  return shown.length > maxUserChars ? `${shown.slice(0, maxUserChars)}…` : shown;
}

type DisableContext = Pick<RunContext, 'config' | 'store' | 'log' | 'commandLine' | 'env'>;

/**
 * Records the disable (a second one replaces the first: a new since, by and reason). Secret
 * values in force are masked out of the reason before it is stored. Returns it and the one
 * it replaced.
 */
export async function disableRuns(ctx: DisableContext, reason: string, now = new Date()): Promise<{ disabled: Disabled; previous: Disabled | null }> {
  const text = validateReason(reason);
  const result = await ctx.store.update(ctx.commandLine, (state) => {
    maskSecrets(ctx, effectiveProducts(ctx.config, state));
    const disabled: Disabled = { since: now.toISOString(), by: operatorName(ctx.env), reason: ctx.log.mask(text) };
    const previous = state.disabled ?? null;
    state.disabled = disabled;
    return { disabled, previous };
  });
  ctx.log.info(`server.disable by ${result.disabled.by}: ${result.disabled.reason}`);
  return result;
}

/** Allows runs again; returns the disable it ended (null: runs were not disabled). */
export async function enableRuns(ctx: DisableContext): Promise<Disabled | null> {
  const previous = await ctx.store.update(ctx.commandLine, (state) => {
    const was = state.disabled ?? null;
    if (was) state.disabled = null;
    return was;
  });
  if (previous) ctx.log.info(`server.enable by ${operatorName(ctx.env)}: runs allowed again (${DisabledError.line(previous)})`);
  return previous;
}

/** What may pass the gate: a dry run changes nothing; `force` runs anyway, loudly. */
export interface RunGate {
  force?: boolean | undefined;
  dryRun?: boolean | undefined;
}

/**
 * The gate of every run command: DisabledError (75) while the server is disabled, unless the run
 * is a dry run or forced. Read without a lock: a disable that lands just after stops the next run.
 */
export function assertEnabled(state: Pick<StateDoc, 'disabled'>, gate: RunGate, log: Logger): void {
  const disabled = state.disabled;
  if (!disabled || gate.dryRun) return;
  if (!gate.force) throw new DisabledError(disabled);
  log.warn(`${DisabledError.line(disabled)}; running anyway (--force)`);
}

/** assertEnabled on state.json as `read` gives it now; one that cannot be read (nor its config) is the run's to report (and record as refused). */
export async function checkEnabled(read: () => Promise<StateDoc>, gate: RunGate, log: Logger): Promise<void> {
  const state = await Promise.resolve()
    .then(read)
    .catch(() => null);
  if (state) assertEnabled(state, gate, log);
}
