// Facts about processes from /proc: telling a live lock holder from a dead one whose PID was
// reused, and finding every process a run started, even those that left its process groups.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { namesIn } from './files.js';

/** The fields of /proc/PID/stat after the command name (field 3 first); null when it is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot; null when unknown. */
export function processStartTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

/**
 * This boot's id. A PID and its start time mean something only within one boot: the lock
 * records the boot, not the host name (a step may rename the host); a run paused for a reboot
 * resumes only once it has changed.
 *
 * Test seam (not an operator feature): BOOTSTRAP_TEST_BOOT_ID_FILE names a file read instead of
 * /proc/sys/kernel/random/boot_id, so tests can "reboot" by rewriting it.
 */
export function bootId(env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    return readFileSync(env['BOOTSTRAP_TEST_BOOT_ID_FILE'] || '/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** True when `pid` runs and, if `startTime` is known, is the same process that recorded it. */
export function isProcessAlive(pid: number, startTime?: string | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = processState(pid);
  if (state === null || state === 'Z' || state === 'X') return false; // gone, or a zombie: it runs nothing
  if (!startTime) return true;
  return processStartTime(pid) === startTime;
}

/** Field 3 of /proc/PID/stat (R, S, D, T, Z …); null when the process is gone. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/**
 * True while any process of the group runs. Zombies do not count: a killed grandchild waits
 * for its reaper (init, in a container often slow) and runs nothing.
 */
function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** Field 5 of /proc/PID/stat: its process group; null when unknown (gone). */
export function processGroupOf(pid: number): number | null {
  const pgrp = Number(statFields(pid)?.[2]);
  return Number.isInteger(pgrp) ? pgrp : null;
}

/** The child PIDs of `pid` (Linux /proc); empty when unknown. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One turn of the event loop: timers and signals are served before a loop of synchronous calls goes on. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** TERM to each group, KILL after `graceMs`; resolves once every group is gone (bounded). */
async function terminateGroups(groups: number[], graceMs: number): Promise<void> {
  const alive = () => groups.some(isGroupAlive);
  for (const g of groups) signalGroup(g, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await sleep(25);
  for (const g of groups) if (isGroupAlive(g)) signalGroup(g, 'SIGKILL');
  for (let i = 0; i < 200 && alive(); i++) await sleep(10);
}

/**
 * Ends process groups (TERM, KILL after `graceMs`), then whatever else carries `marker` (those
 * that left the groups), sparing `exclude`: how a timeout or a stop ends what was started.
 */
export async function endProcesses(groups: number[], marker: string | null, graceMs: number, exclude: ReadonlySet<number> = new Set()): Promise<void> {
  await terminateGroups(groups, graceMs);
  if (marker) await sweepMarked(marker, graceMs, exclude);
}

/**
 * PIDs whose environment holds `entry` (`NAME=value`) exactly: every process a run started
 * inherits the run's marker, also after `setsid` or a double fork. Zombies have no environment
 * and are not listed; processes of other users are unreadable (and not ours).
 */
function processesWithEnv(entry: string, exclude: ReadonlySet<number> = new Set()): number[] {
  const inner = Buffer.from(`\0${entry}\0`);
  const first = Buffer.from(`${entry}\0`);
  const found: number[] = [];
  for (const name of namesIn('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || exclude.has(pid)) continue;
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // gone, or not ours
    }
    if (environ.subarray(0, first.length).equals(first) || environ.includes(inner)) found.push(pid);
  }
  return found;
}

/** A process a sweep ended: its PID and command name (/proc/PID/comm, read before it was signalled). */
export interface EndedProcess {
  pid: number;
  command: string;
}

/**
 * Ends every process whose environment holds `entry`: TERM (again to what they fork meanwhile)
 * until they are gone or `graceMs` passed, then KILL, bounded. Returns the PIDs it found.
 */
export async function sweepMarked(entry: string, graceMs: number, exclude: ReadonlySet<number> = new Set()): Promise<number[]> {
  return (await sweepMarkedNamed(entry, graceMs, exclude)).map((p) => p.pid);
}

/** sweepMarked, naming what it ended (for the run's warning: `sleep (1234)`). */
export async function sweepMarkedNamed(entry: string, graceMs: number, exclude: ReadonlySet<number> = new Set()): Promise<EndedProcess[]> {
  const seen = new Map<number, string>();
  const see = (pid: number) => seen.has(pid) || seen.set(pid, commandOf(pid));
  const deadline = Date.now() + graceMs;
  let pids = processesWithEnv(entry, exclude);
  while (pids.length > 0 && Date.now() < deadline) {
    for (const pid of pids) if (!seen.has(pid)) signalPid(pid, 'SIGTERM');
    pids.forEach(see);
    await sleep(25);
    pids = processesWithEnv(entry, exclude);
  }
  for (let round = 0; round < 50 && pids.length > 0; round++) {
    for (const pid of pids) {
      see(pid);
      signalPid(pid, 'SIGKILL');
    }
    await sleep(10);
    pids = processesWithEnv(entry, exclude);
  }
  return [...seen].map(([pid, command]) => ({ pid, command }));
}

/**
 * The command name of `pid` (/proc/PID/comm, at most 15 bytes, set by the process itself: shown
 * with anything but printable ASCII as `?`); `?` when it is gone.
 */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'latin1').replace(/\n$/, '').replace(/[^\x20-\x7e]/g, '?') || '?';
  } catch {
    return '?';
  }
}

/** `python3 (1234), sleep (1240)`: at most `max` named, then how many more. */
export function describeProcesses(list: readonly EndedProcess[], max = 10): string {
  const named = list.slice(0, max).map((p) => `${p.command} (${p.pid})`);
  return `${named.join(', ')}${list.length > max ? `, … (${list.length - max} more)` : ''}`;
}

let bash: string | null | undefined;

/** bash by absolute path, found once: a step's PATH is no business of the agent's own launcher. */
export function bashPath(env: NodeJS.ProcessEnv = process.env): string | null {
  if (bash !== undefined) return bash;
  const candidates = ['/bin/bash', '/usr/bin/bash', ...(env['PATH'] ?? '').split(delimiter).filter((d) => d.startsWith('/')).map((d) => join(d, 'bash'))];
  bash = candidates.find((c) => existsSync(c)) ?? null;
  return bash;
}
