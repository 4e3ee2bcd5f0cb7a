// A run's request, checked before anything runs or any lock is taken: its label, products, mode
// and upgrade target (validateRequest, validateMode), what it will change (resolveIntent, with
// the version order of compareVersions, in ../versions.ts), its deadline, and what steps learn
// of it from their environment (runInfoOf).

import type { Config } from '../config/config.js';
import { DataError, UsageError } from '../errors.js';
import { effectiveProducts, findProduct } from '../products.js';
import type { RunInfo } from '../pipeline/environment.js';
import type { StateDoc } from '../state/state.js';
import { describeChoices } from '../util/suggest.js';
import { hasControls } from '../util/text.js';
import { compareVersions } from '../versions.js';
import type { RunContext } from './context.js';
import type { Intent, RunRequest } from './types.js';

/** What can be refused before anything runs: the label, the products, the mode, the upgrade's target. */
export function validateRequest(config: Config, request: RunRequest): void {
  if (request.label !== undefined && (request.label === '' || request.label.length > 200 || hasControls(request.label))) {
    throw new UsageError('--label: one line of 1 to 200 characters, without control characters', 'e.g. --label rollout-42/batch-2');
  }
  for (const p of request.products ?? []) findProduct(config, p);
  if (request.action === 'mode') validateMode(config, request.mode ?? '');
  if (request.action === 'upgrade') {
    if (!request.product) throw new UsageError('product.upgrade needs PRODUCT');
    const product = findProduct(config, request.product);
    if (!request.toVersion && !product.version) throw new DataError(`${request.product} has no version in bootstrap.ini`, 'pass --to VERSION');
    if (request.toVersion !== undefined && !/^[0-9A-Za-z][0-9A-Za-z.+~_-]*$/.test(request.toVersion)) throw new DataError(`'${request.toVersion}' is not a version`, 'use letters, digits, . + ~ _ -');
  }
}

/** What the run will change: the products (with --products and an upgrade's version), the mode. */
export function resolveIntent(config: Config, state: StateDoc, request: RunRequest): Intent {
  const current = state.mode ?? config.server.defaultMode;
  let products = effectiveProducts(config, state);
  if (request.products?.length) products = products.map((p) => ({ ...p, enabled: request.products!.includes(p.name) }));
  let versionPrevious: string | null | undefined;
  let toVersion: string | undefined;
  if (request.action === 'upgrade') {
    const target = products.find((p) => p.name === request.product)!;
    versionPrevious = target.version;
    toVersion = request.toVersion ?? config.products.get(target.name)!.version!;
    if (versionPrevious && compareVersions(toVersion, versionPrevious) < 0 && !request.allowDowngrade) {
      throw new DataError(
        `product.upgrade ${target.name}: ${toVersion}${request.toVersion ? '' : ' (the version in bootstrap.ini)'} is older than ${versionPrevious}, the version in force: that would be a downgrade`,
        `pass --allow-downgrade to go from ${versionPrevious} to ${toVersion}, or --to a newer version`,
      );
    }
    products = products.map((p) => (p.name === target.name ? { ...p, version: toVersion! } : p));
  }
  return {
    products,
    mode: request.action === 'mode' ? request.mode! : current,
    modePrevious: request.action === 'mode' ? current : undefined,
    versionPrevious,
    toVersion,
  };
}

/** Checks that MODE is one of `[server] modes`. */
export function validateMode(config: Config, mode: string): void {
  const { modes } = config.server;
  if (!modes.includes(mode)) throw new DataError(`unknown mode '${mode}'`, describeChoices(mode, modes).replace(/^known:/, 'modes are:'));
}

/** When the whole run must be over: --timeout, else [phases] run_timeout, from `from`. */
export function deadlineOf(request: RunRequest, config: Config, from: number): number {
  return from + (request.timeoutMs ?? config.phases.runTimeoutMs);
}

/** What steps learn of the run from the environment (BOOTSTRAP_ACTION, _MODE, _VERSION …). */
export function runInfoOf(ctx: RunContext, request: RunRequest, intent: Intent, files: { runId: string; snapshot: string }): RunInfo {
  return {
    action: request.action,
    runId: files.runId,
    server: ctx.config.server.name,
    mode: intent.mode,
    modePrevious: intent.modePrevious,
    product: request.action === 'upgrade' ? request.product : undefined,
    version: intent.toVersion,
    versionPrevious: intent.versionPrevious,
    products: intent.products,
    configJson: files.snapshot,
    stateDir: ctx.stateDir,
    label: request.label,
  };
}
