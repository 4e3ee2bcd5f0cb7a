// The plan: base dir → each phase's steps in run order, with their companions, and every file
// that will not run with the reason. Ordering and eligibility are those of dib-run-parts:
// regular files (or symlinks to them) directly in the phase dir, executable, named
// ^[0-9A-Za-z_-]+$, in `LANG=C sort -n` order. The programs the configuration names
// (reboot_command, exec heartbeats) are judged by the trust rules of steps here too.

import { closeSync, openSync, readdirSync, readSync, statSync, type Dirent, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, PermissionDeniedError, type BootstrapError } from '../errors.js';
import { commandTrustProblem, pathTrustProblem, trustProblem, type TrustProblem } from '../util/trust.js';

export const runPhases = ['pre-configure', 'configure', 'post-configure', 'migration'] as const;
export type PhaseName = (typeof runPhases)[number] | 'error' | 'explorer';

const stepNamePattern = /^[0-9A-Za-z_-]+$/;
const environmentNamePattern = /^[0-9A-Za-z_.-]+$/;

export interface PlannedStep {
  phase: PhaseName;
  name: string;
  path: string;
  check: string | null;
  backout: string | null;
  /** `NAME.if`: runs before the step; exit 0 runs it, 1 skips it, anything else fails it. */
  condition: string | null;
}

export interface SkippedFile {
  name: string;
  reason: string;
}

/**
 * A file that would run but must not: writable by others or owned by a stranger (`insecure`,
 * the rule of cron and sudo, since steps run as root), or not a script or program (`format`).
 */
export interface RefusedFile {
  path: string;
  reason: string;
  kind: 'insecure' | 'format';
  /** For a program named in bootstrap.ini: where (`[phases] reboot_command`). */
  key?: string;
}

/** A program bootstrap runs as root because bootstrap.ini names it. */
export interface ConfiguredProgram {
  /** Where it is named: `[phases] reboot_command`, `[heartbeat.NAME] command`. */
  key: string;
  argv: readonly string[];
}

export interface PhasePlan {
  phase: PhaseName;
  dir: string;
  exists: boolean;
  steps: PlannedStep[];
  skipped: SkippedFile[];
}

export interface Plan {
  baseDir: string;
  environment: { dir: string; files: string[]; skipped: SkippedFile[] };
  phases: PhasePlan[];
  error: PhasePlan;
  /** explorer.d: executables whose output is a fact (named after the file, `NN-` dropped). */
  explorers: PhasePlan;
  /** Files and dirs that make the whole run refuse to start (unless allow_insecure, for `insecure`). */
  refused: RefusedFile[];
  /** Files with no `#!` line that run with a shell (`[phases] no_shebang = sh | bash`). */
  viaSh: ShellFiles;
}

/** Files with no `#!` line, and the shell they run with: `sh` (/bin/sh) or `bash` (as dib-run-parts does). */
export class ShellFiles extends Set<string> {
  constructor(readonly shell: 'sh' | 'bash' = 'sh') {
    super();
  }
}

export interface PlanOptions {
  /** A step with no `#!` line that is no program: refused (default), or run with /bin/sh or bash. */
  noShebang?: 'refuse' | 'sh' | 'bash';
  /** Programs named in bootstrap.ini, judged as steps are; `env` gives the PATH they are found on. */
  programs?: readonly ConfiguredProgram[];
  env?: NodeJS.ProcessEnv;
}

export function planPhases(baseDir: string, options: PlanOptions = {}): Plan {
  // Each plain (not symlinked) step's stat, taken once when it is found and used again for the
  // trust check: this runs before every run, over hundreds of files.
  const stats = new Map<string, Stats>();
  const plan: Plan = {
    baseDir,
    environment: scanEnvironmentDir(join(baseDir, 'environment.d')),
    phases: runPhases.map((phase) => scanPhaseDir(phase, join(baseDir, `${phase}.d`), stats)),
    error: scanPhaseDir('error', join(baseDir, 'error.d'), stats),
    explorers: scanPhaseDir('explorer', join(baseDir, 'explorer.d'), stats),
    refused: [],
    viaSh: new ShellFiles(options.noShebang === 'bash' ? 'bash' : 'sh'),
  };
  plan.refused = findRefused(plan, stats, options.noShebang === 'sh' || options.noShebang === 'bash', options.programs ?? [], options.env ?? process.env);
  return plan;
}

/**
 * Everything that would run, checked as cron and sudo check: the file and every directory and
 * symlink on the way to it (util/trust), so that what is checked is what runs. A directory at
 * fault is listed once.
 */
function findRefused(plan: Plan, stats: Map<string, Stats>, shebanglessViaSh: boolean, programs: readonly ConfiguredProgram[], env: NodeJS.ProcessEnv): RefusedFile[] {
  const refused: RefusedFile[] = [];
  const uid = process.getuid?.() ?? 0;
  const head = Buffer.alloc(4);
  const cache = new Map<string, TrustProblem | null>();
  const dirs = new Map<string, TrustProblem | null>();
  const named = new Set<string>();
  const check = (path: string) => {
    // A plain file found in its dir: the dir is walked once, the file judged by the stat at hand.
    const st = stats.get(path);
    let problem: TrustProblem | null;
    if (st) {
      const dir = dirname(path);
      if (!dirs.has(dir)) dirs.set(dir, pathTrustProblem(dir, uid, cache));
      const reason = dirs.get(dir) ? null : trustProblem(st, uid);
      problem = dirs.get(dir) ?? (reason ? { path, reason } : null);
    } else problem = pathTrustProblem(path, uid, cache);
    if (!problem || named.has(problem.path)) return;
    named.add(problem.path);
    refused.push({ path: problem.path, reason: problem.reason, kind: 'insecure' });
  };
  const phases = [...plan.phases, plan.error, plan.explorers].filter((p) => p.exists);
  for (const f of plan.environment.files) check(f);
  for (const phase of phases) {
    for (const step of phase.steps) {
      for (const file of [step.path, step.check, step.backout, step.condition]) {
        if (!file) continue;
        check(file);
        const format = formatProblem(file, head);
        if (format === noShebang && shebanglessViaSh) plan.viaSh.add(file);
        else if (format) refused.push({ path: file, reason: format, kind: 'format' });
      }
    }
  }
  refused.push(...refusedPrograms(programs, env, cache));
  // Two explorers that would give the same fact: which one wins would be an accident of order.
  const byFact = new Map<string, string>();
  for (const step of plan.explorers.steps) {
    const fact = factName(step.name);
    const other = byFact.get(fact);
    if (other) refused.push({ path: step.path, reason: `gives the fact '${fact}', as ${other} does`, kind: 'format' });
    else byFact.set(fact, step.name);
  }
  return refused;
}

/** Programs named in bootstrap.ini run as root as steps do: the same rules, with the key that names each. */
export function refusedPrograms(programs: readonly ConfiguredProgram[], env: NodeJS.ProcessEnv, cache = new Map<string, TrustProblem | null>()): RefusedFile[] {
  const uid = process.getuid?.() ?? 0;
  const refused: RefusedFile[] = [];
  for (const program of programs) {
    const problem = commandTrustProblem(program.argv, env, uid, cache);
    if (problem) refused.push({ path: problem.path, reason: problem.reason, kind: 'insecure', key: program.key });
  }
  return refused;
}

/** The fact an explorer gives: its name without a leading `NN-` order prefix. */
export function factName(explorer: string): string {
  return explorer.replace(/^[0-9]+-(?=.)/, '');
}

/** A step must be a script (`#!`) or a program (ELF): anything else would be guessed at by a shell. */
function formatProblem(path: string, buffer: Buffer): string | null {
  let n: number;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, buffer, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return `cannot be read (${(err as NodeJS.ErrnoException).code})`;
  }
  const script = n >= 2 && buffer[0] === 0x23 && buffer[1] === 0x21; // #!
  const program = n === 4 && buffer.readUInt32BE(0) === 0x7f454c46; // \x7fELF
  return script || program ? null : noShebang;
}

const noShebang = 'has no #! line and is not a program (a shell would guess how to run it)';

/**
 * The plan's one verdict, the same for a run, `--dry-run` and `phases.list`: null, or the error
 * naming every refused file — 77 when any is untrusted (unless allow_insecure), else 78.
 */
export function planRefusal(plan: Plan, allowInsecure: boolean): BootstrapError | null {
  return refusalOf(plan.refused, allowInsecure);
}

/** The error naming every refused file (77 when any is untrusted, unless allow_insecure; else 78), or null. */
export function refusalOf(all: readonly RefusedFile[], allowInsecure: boolean): BootstrapError | null {
  const refused = all.filter((r) => r.kind === 'format' || !allowInsecure);
  if (refused.length === 0) return null;
  const list = refused.map(describeRefused).join('; ');
  if (refused.some((r) => r.kind === 'insecure')) {
    return new PermissionDeniedError(`refusing to run ${refused.length} file${refused.length === 1 ? '' : 's'}: ${list}`, 'chmod go-w them and chown them to root, or set [phases] allow_insecure = true for development');
  }
  return new ConfigError(`refusing to run ${refused.length} file${refused.length === 1 ? '' : 's'}: ${list}`, 'add a #! line such as #!/bin/bash; or set [phases] no_shebang = bash to run such files with bash as os-refresh-config does, or set [phases] no_shebang = sh to run such files with /bin/sh');
}

/** `PATH: REASON`, with the ini key that names it for a configured program. */
export function describeRefused(r: RefusedFile): string {
  return `${r.path}${r.key ? ` (named by ${r.key})` : ''}: ${r.reason}`;
}

/** Lists a phase dir: steps in run order, with `.check` / `.backout` companions attached. */
function scanPhaseDir(phase: PhaseName, dir: string, stats = new Map<string, Stats>()): PhasePlan {
  const entries = listDir(dir);
  if (entries === null) return { phase, dir, exists: false, steps: [], skipped: [] };
  const entryOf = new Map(entries.map((e) => [e.name, e]));
  const steps: PlannedStep[] = [];
  const stepNames = new Set<string>();
  const skipped: SkippedFile[] = [];
  const companions = new Map<string, string>();
  for (const name of entryOf.keys()) {
    const m = /^([0-9A-Za-z_-]+)\.(check|backout|if)$/.exec(name);
    if (m) companions.set(name, m[1]!);
  }
  for (const name of sortRunParts([...entryOf.keys()])) {
    const path = `${dir}/${name}`; // dir is normalized (join), a name has no slash: no join per file
    if (companions.has(name)) {
      const owner = companions.get(name)!;
      if (!entryOf.has(owner)) skipped.push({ name, reason: `companion of ${owner}, which does not exist` });
      continue; // attached to its step below
    }
    const reason = whyNotAStep(name, path, entryOf.get(name)!, stats);
    if (reason) {
      skipped.push({ name, reason });
      continue;
    }
    stepNames.add(name);
    steps.push({
      phase,
      name,
      path,
      check: entryOf.has(`${name}.check`) ? `${path}.check` : null,
      backout: entryOf.has(`${name}.backout`) ? `${path}.backout` : null,
      condition: entryOf.has(`${name}.if`) ? `${path}.if` : null,
    });
  }
  for (const [name, owner] of companions) {
    if (entryOf.has(owner) && !stepNames.has(owner)) skipped.push({ name, reason: `companion of ${owner}, which is not a step` });
  }
  return { phase, dir, exists: true, steps, skipped };
}

function listDir(dir: string): Dirent[] | null {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') throw new ConfigError(`phase dir ${dir} is not a directory`, 'remove or rename it');
    if (code === 'EACCES') throw new PermissionDeniedError(`cannot read phase dir ${dir}: permission denied`, 'run as root');
    throw err;
  }
}

/** Why a dir entry is not a step (null: it is one). The entry's type saves an lstat per file. */
function whyNotAStep(name: string, path: string, entry: Dirent, stats: Map<string, Stats>): string | null {
  if (!stepNamePattern.test(name)) return 'name not allowed (only letters, digits, _ and -)';
  if (entry.isDirectory()) return 'directory';
  if (!entry.isFile() && !entry.isSymbolicLink()) return 'not a regular file';
  let st: Stats;
  try {
    st = statSync(path); // follows a symlink to what would run
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ELOOP' ? 'symlink loop' : code === 'ENOENT' ? 'broken symlink' : `cannot read it (${code})`;
  }
  if (st.isDirectory()) return 'directory';
  if (!st.isFile()) return 'not a regular file';
  if ((st.mode & 0o111) === 0) return 'not executable';
  if (!entry.isSymbolicLink()) stats.set(path, st); // a symlink's target is walked in full (util/trust)
  return null;
}

function scanEnvironmentDir(dir: string): Plan['environment'] {
  const entries = listDir(dir);
  if (entries === null) return { dir, files: [], skipped: [] };
  const files: string[] = [];
  const skipped: SkippedFile[] = [];
  // dib-run-parts sorts the full paths with `sort -n`: none starts with a number, so it is byte
  // order (`10-b` before `5-a`), unlike the steps' numeric order.
  for (const name of entries.map((e) => e.name).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
    const path = join(dir, name);
    if (!environmentNamePattern.test(name)) skipped.push({ name, reason: 'name not allowed (only letters, digits, _, . and -)' });
    else if (!isFile(path)) skipped.push({ name, reason: 'not a regular file' });
    else files.push(path);
  }
  return { dir, files, skipped };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The order of `LANG=C sort -n`: by the leading number (optional '-', digits; none counts as
 * 0), then byte by byte, as sort's last-resort comparison does. Keys are worked out once per
 * name, not once per comparison.
 */
export function sortRunParts(names: string[]): string[] {
  return names
    .map((name) => ({ name, number: leadingNumber(name), bytes: Buffer.from(name) }))
    .sort((a, b) => compareNumeric(a.number, b.number) || Buffer.compare(a.bytes, b.bytes))
    .map((k) => k.name);
}

interface LeadingNumber {
  /** -1, 0 (no number, or zero), 1 */
  sign: number;
  /** Without leading zeros. */
  digits: string;
}

function leadingNumber(s: string): LeadingNumber {
  const m = /^\s*(-?)(\d+)/.exec(s);
  const digits = m ? m[2]!.replace(/^0+/, '') : '';
  return { sign: digits === '' ? 0 : m![1] === '-' ? -1 : 1, digits };
}

function compareNumeric(x: LeadingNumber, y: LeadingNumber): number {
  if (x.sign !== y.sign) return x.sign - y.sign;
  if (x.sign === 0) return 0;
  const magnitude = x.digits.length - y.digits.length || (x.digits < y.digits ? -1 : x.digits > y.digits ? 1 : 0);
  return x.sign * magnitude;
}
