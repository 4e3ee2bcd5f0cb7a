// What a heartbeat kind is (it parses its own [heartbeat.NAME] section into a typed spec, and
// checks that spec into a verdict), what every spec has, and what a check and a checkup answer.
// The kinds themselves, and the union of their specs, are in kinds.ts.

import type { TextMasker } from '../pipeline/output.js';

/**
 * What every check has, whatever its kind: its name, its timeout (`timeout`, default 2 s) and the
 * modes it belongs to (`modes`, of [server] modes; null: every mode).
 */
export interface SpecBase {
  name: string;
  timeoutMs: number;
  modes: string[] | null;
}

/**
 * What a kind reads its section with: config's typed reads, bound to the section; each error
 * names the section and key (exit 78).
 */
export interface SectionReader {
  /** `heartbeat.NAME`, for messages. */
  readonly where: string;
  /** Refuses a key not in `known`. */
  keys(known: string[]): void;
  str(key: string): string | undefined;
  int(key: string, dflt: number, min?: number): number;
  seconds(key: string, dfltSeconds: number): number;
  /** A path, resolved against the folder of bootstrap.ini. */
  path(key: string): string | undefined;
  /** A comma-separated list. */
  list(key: string): string[] | undefined;
}

/** What a check is given beside its spec. */
export interface CheckContext {
  /** Aborts at the check's timeout. */
  signal: AbortSignal;
  /** The agent's environment, which an exec check's command gets (and finds its program on). */
  env: NodeJS.ProcessEnv;
  /** Secrets out of what a check says (an exec check's output), before it is cut, kept or shown. */
  masker: TextMasker;
}

/** One kind of check: `S` is its spec, whose `type` is the kind's name in the registry. */
export interface HeartbeatKind<S extends SpecBase & { type: string }> {
  /** Its keys beside `type` and `timeout`. */
  keys: string[];
  /** Its section, read once the type and timeout were and the keys checked. */
  parse(r: SectionReader, base: SpecBase): S;
  /** A failed check is an unhealthy verdict saying why (checkup turns a throw into one too). */
  check(spec: S, ctx: CheckContext): Promise<CheckVerdict>;
}

export interface CheckVerdict {
  healthy: boolean;
  detail: string;
}

export interface CheckResult extends CheckVerdict {
  name: string;
  type: string;
  latency_ms: number;
}

export interface Checkup {
  /** Every check that ran is healthy (none ran: true). */
  healthy: boolean;
  started_at: string;
  finished_at: string;
  /** The checks that ran. */
  results: CheckResult[];
  /** The mode whose checks ran (heartbeat.checkup, the health gate); absent: those asked for ran (heartbeat.get). */
  mode?: string;
  /** The checks that do not belong to `mode`: not run, neither healthy nor unhealthy. */
  not_run?: { name: string; type: string; modes: string[] }[];
}
