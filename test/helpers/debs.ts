// The two Debian packages (scripts/build-deb.sh on this checkout's dist/), built once per build
// into dist/test-debs/<key>, the key hashing what goes into them (the commit, uncommitted changes
// but to tests, the bundle): the test files that need them (deb.test.ts, booted.test.ts) share one
// build, and a changed checkout never gets stale packages. Built into a temp dir then renamed: a
// half-built set is never used.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { root } from './cli.js';

const version = `${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}-1`;
export const debNames = { all: `bootstrap-agent_${version}_all.deb`, node: `bootstrap-agent-node_${version}_amd64.deb` } as const;

/** Runs scripts/build-deb.sh on the existing build into `out`, quickly compressed. */
export function buildDebs(out: string, ...args: string[]): void {
  execFileSync(join(root, 'scripts/build-deb.sh'), ['--no-build', ...args, out], {
    env: { ...process.env, BOOTSTRAP_DEB_COMPRESS: '-Zgzip -z1' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000,
  });
}

function debKey(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  const hash = createHash('sha256');
  // Tests are not packaged; build-deb.sh only takes the bundled Node's version from node-bins.ts.
  for (const paths of [['.', ':(exclude)test'], ['test/helpers/node-bins.ts']]) {
    for (const part of [git('status', '--porcelain', '--', ...paths), git('diff', 'HEAD', '--', ...paths)]) hash.update(part);
  }
  hash.update(git('rev-parse', 'HEAD'));
  hash.update(readFileSync(join(root, 'dist/bootstrap.cjs')));
  return hash.digest('hex').slice(0, 16);
}

/** The dir holding both packages of this build, building them (asynchronously) the first time. */
export async function sharedDebs(): Promise<string> {
  const base = join(root, 'dist/test-debs');
  const key = debKey();
  const dir = join(base, key);
  if (Object.values(debNames).every((n) => existsSync(join(dir, n)))) return dir;
  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(join(base, `${key}.partial-`));
  try {
    await promisify(execFile)(join(root, 'scripts/build-deb.sh'), ['--no-build', join(work, 'out')], {
      env: { ...process.env, BOOTSTRAP_DEB_COMPRESS: '-Zgzip -z1' }, timeout: 600_000, maxBuffer: 16 << 20,
    });
    // Another file may have finished first: its set is as good as ours.
    try {
      renameSync(join(work, 'out'), dir);
    } catch (e) {
      if (!existsSync(dir)) throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  // Only this checkout's older builds go (dist/ is this checkout's own).
  for (const old of readdirSync(base)) if (old !== key && !old.includes('.partial-')) rmSync(join(base, old), { recursive: true, force: true });
  return dir;
}
