// Shared helpers of the bench scripts: wall time of a command, medians, interleaved runs.
import { spawnSync } from 'node:child_process';

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
