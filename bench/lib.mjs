// Shared helpers of the bench scripts: wall time of a command, medians, interleaved runs.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, statfsSync } from 'node:fs';

/**
 * The environment every measured command gets: this one without what changes a Node's start for
 * reasons of this machine. Node 20 reads NODE_EXTRA_CA_CERTS at every start (~40 ms for a
 * system's whole CA bundle, as some build machines set it): added to both sides of a ratio, it
 * flatters it (Node 20's product.get measured 1.43 with it, 1.73 without). NODE_OPTIONS could
 * preload anything.
 */
export const benchEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS' && k !== 'NODE_OPTIONS'));

export function wallMs(cmd, args, options = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: benchEnv, ...options });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && !options.allowFailure) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Runs each of `cases` `rounds` times, interleaved so that drift of the machine hits all alike. */
export function interleave(rounds, cases) {
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) for (const [name, run] of Object.entries(cases)) times[name].push(run());
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/**
 * What filesystem `dir` is on, as the phases bench prints it: creating a file costs very
 * differently on each (a run creates one per step in its state dir). ext4 without a journal
 * (some VM images' root) is told apart: there, each new inode is chosen past the inodes freed in
 * the last seconds (ext4's recently_deleted check, made only without a journal), so back-to-back
 * runs, each freeing its 300 files, cost ~1 ms a step more than on a journaled ext4 — unless
 * the state dir's runs/ has ext4's T attribute (the agent sets it: src/state/state.ts).
 */
export function filesystemOf(dir) {
  const kinds = { 0xef53: 'ext2/3/4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };
  const type = statfsSync(dir).type;
  const kind = kinds[type] ?? `type 0x${type.toString(16)}`;
  if (type !== 0xef53) return kind;
  // st_dev as Linux encodes it: major in bits 8-19, minor in bits 0-7 and 20-31.
  const dev = statSync(dir).dev;
  const majMin = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
  let name = '';
  try {
    name = /^DEVNAME=(.*)$/m.exec(readFileSync(`/sys/dev/block/${majMin}/uevent`, 'utf8'))?.[1]?.replaceAll('/', '!') ?? '';
  } catch {
    return kind;
  }
  if (!name || !existsSync(`/proc/fs/ext4/${name}`)) return kind;
  // An internal journal shows as NAME-8 in /proc/fs/jbd2 (an external one, rare, under its own device).
  return `ext4 (${name}), ${existsSync(`/proc/fs/jbd2/${name}-8`) ? 'journaled' : 'no journal of its own'}`;
}
