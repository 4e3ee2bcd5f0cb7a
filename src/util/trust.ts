// Whether a path can be trusted by a process running as root, as sudo and cron judge it: every
// directory on the way to it, and every symlink followed, belongs to root or to the user running
// bootstrap, and no directory can be written by others (a sticky one, like /tmp, can: there
// nobody may rename or remove what is not theirs). Then nobody else can change what the path
// names between the check and its use: what was checked is what runs. Programs named in the
// configuration (reboot_command, exec heartbeats) are judged by the same rules: the file their
// first word names (looked up on PATH when bare) and, for an interpreter or a launcher (env,
// nice, sudo, …), every file its arguments name.

import { accessSync, constants, lstatSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';

const maxLinks = 40; // as the kernel's MAXSYMLINKS

/** Why the owner and mode of one file or dir make it untrustworthy (null: fine). */
export function trustProblem(st: Stats, uid: number): string | null {
  if (st.uid !== 0 && st.uid !== uid) return `owned by uid ${st.uid}, neither root nor the user running bootstrap (uid ${uid})`;
  if (st.isSymbolicLink()) return null; // a symlink's own mode means nothing
  const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
  if (st.mode & 0o002 && !sticky) return `writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  if (st.mode & 0o020 && !sticky) return `writable by its group (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}

/**
 * Walks `path` from / component by component, following symlinks by hand, and returns the first
 * problem found (`/tmp/ww`, `directory writable by others …`) or null. `cache` holds the verdicts
 * on directories already walked (hundreds of steps share a few). The last component itself is
 * checked too unless `withLeaf` is false.
 */
export interface TrustProblem {
  /** The file, dir or symlink at fault. */
  path: string;
  reason: string;
}

export function pathTrustProblem(path: string, uid: number, cache = new Map<string, TrustProblem | null>(), withLeaf = true): TrustProblem | null {
  const parts = resolve(path).split('/').filter(Boolean);
  let current = '/';
  let links = 0;
  const rootProblem = cached(cache, '/', uid);
  if (rootProblem) return rootProblem;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      current = dirname(current);
      continue;
    }
    const next = join(current, part);
    const isLeaf = parts.length === 0;
    if (isLeaf && !withLeaf) return null;
    let st: Stats;
    try {
      st = lstatSync(next);
    } catch {
      return null; // missing: nothing to trust yet (the caller reports a missing file)
    }
    const problem = isLeaf && !st.isSymbolicLink() ? describe(next, st, uid) : cached(cache, next, uid, st);
    if (problem) return problem;
    if (st.isSymbolicLink()) {
      if (++links > maxLinks) return { path, reason: 'too many levels of symbolic links' };
      const target = readlinkSync(next);
      parts.unshift(...target.split('/').filter(Boolean));
      if (isAbsolute(target)) current = '/';
      continue;
    }
    current = next;
  }
  return null;
}

function cached(cache: Map<string, TrustProblem | null>, path: string, uid: number, known?: Stats): TrustProblem | null {
  if (cache.has(path)) return cache.get(path)!;
  let verdict: TrustProblem | null;
  try {
    verdict = describe(path, known ?? lstatSync(path), uid);
  } catch {
    verdict = null;
  }
  cache.set(path, verdict);
  return verdict;
}

function describe(path: string, st: Stats, uid: number): TrustProblem | null {
  const problem = trustProblem(st, uid);
  if (!problem) return null;
  return { path, reason: `${st.isDirectory() ? 'directory ' : st.isSymbolicLink() ? 'symlink ' : ''}${problem}` };
}

/**
 * The file a command's first word runs, by absolute path: as given when it holds a `/`, else
 * the first executable file of that name in PATH's absolute dirs (as execvp, minus the relative
 * dirs no root process should search); null when none. Spawning this path, not the bare name,
 * is what keeps what was checked what runs.
 */
export function resolveProgram(program: string, env: NodeJS.ProcessEnv): string | null {
  if (program.includes('/')) return resolve(program);
  for (const dir of (env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, program);
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Programs that run what their arguments name: interpreters (`sh FILE`, `python3 FILE`) and
 * launchers that run another program (`env PROG`, `nice PROG`, `sudo PROG`). Whatever runs
 * through them runs as root too. A heuristic by name: a command should name its script directly.
 */
const interpreters = /^(?:sh|ash|bash|dash|ksh|mksh|zsh|fish|csh|tcsh|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit|tclsh[0-9.]*|wish[0-9.]*|expect|awk|gawk|mawk|nawk|Rscript|pwsh)$/;
const launchers = /^(?:env|nice|nohup|timeout|setsid|stdbuf|ionice|chrt|taskset|numactl|cgexec|sudo|doas|su|runuser|sg|setpriv|capsh|chroot|unshare|nsenter|xargs|busybox|flock|systemd-run|systemd-inhibit|time|watch|strace|ltrace|script|cpulimit|trickle|firejail)$/;

/**
 * The files a configured command runs: its program and, when that is an interpreter or a
 * launcher, every file its arguments name (see namedFiles). Another program's arguments are its
 * data (`check_file_age -f /var/log/app.log`), not judged.
 */
function commandFiles(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const program = resolveProgram(argv[0] ?? '', env);
  if (!program) return [];
  const name = basename(program);
  if (!interpreters.test(name) && !launchers.test(name)) return [program];
  return [...new Set([program, ...argv.slice(1).flatMap((arg, i) => namedFiles(arg, argv.slice(1, i + 1).includes('--'), env))])];
}

/**
 * The existing regular files one argument of an interpreter or launcher may run, by any
 * position: the argument itself unless it is an option (before `--`) or `VAR=x`, also looked up
 * on PATH when bare (`env evil.sh`); the value of `--opt=FILE` and `VAR=FILE`; and every absolute
 * path in a script string (`sh -c "/opt/x.sh; df -P /"`, `su -c …`). Options that take a value
 * as the next argument need no special case: that value is judged as an operand.
 */
function namedFiles(arg: string, afterDashes: boolean, env: NodeJS.ProcessEnv): string[] {
  const candidates: string[] = [];
  const option = !afterDashes && arg.startsWith('-');
  const assignment = !afterDashes && /^[A-Za-z_][A-Za-z0-9_]*=/.test(arg);
  if (!option && !assignment && arg !== '') {
    candidates.push(resolve(arg));
    if (!arg.includes('/')) {
      const onPath = resolveProgram(arg, env);
      if (onPath) candidates.push(onPath);
    }
  }
  const value = /^[^=\s]*=(.+)$/.exec(arg)?.[1];
  if ((option || assignment) && value) candidates.push(resolve(value));
  for (const m of arg.matchAll(/(?:^|[\s;&|()<>`'"=$])(\/[^\s;&|()<>`'"$]*)/g)) candidates.push(m[1]!);
  return candidates.filter(isRegularFile);
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first trust problem of the files a configured command runs (see commandFiles), or null. */
export function commandTrustProblem(argv: readonly string[], env: NodeJS.ProcessEnv, uid: number, cache = new Map<string, TrustProblem | null>()): TrustProblem | null {
  for (const file of commandFiles(argv, env)) {
    const problem = pathTrustProblem(file, uid, cache);
    if (problem) return problem;
  }
  return null;
}
