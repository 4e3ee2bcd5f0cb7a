// The two Debian packages (scripts/build-deb.sh on this checkout's dist/), built once per build
// into dist/test-debs/<key>, the key hashing what goes into them (the commit, uncommitted changes
// but to tests, the bundle): the test files that need them (deb.test.ts, booted.test.ts) share one
// build, and a changed checkout never gets stale packages (published whole: helpers/publish.ts).
// And the same package repacked as another version, or broken (upgrades, put-backs).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { root } from './cli.js';
import { publishOnce } from './publish.js';

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
  await publishOnce(dir, async (work) => {
    await promisify(execFile)(join(root, 'scripts/build-deb.sh'), ['--no-build', join(work, 'out')], {
      env: { ...process.env, BOOTSTRAP_DEB_COMPRESS: '-Zgzip -z1' }, timeout: 600_000, maxBuffer: 16 << 20,
    });
    return join(work, 'out');
  });
  // Only this checkout's older builds go (dist/ is this checkout's own).
  for (const old of readdirSync(base)) if (old !== key && !old.includes('.partial-')) rmSync(join(base, old), { recursive: true, force: true });
  return dir;
}

/**
 * The package `real` again as `version` (its control and package.json) into `out`; `broken`: its
 * bundle throws at once (an upgrade that must be put back). Asynchronous: a booted machine's
 * scenarios run meanwhile.
 */
export async function repackDeb(real: string, out: string, version: string, broken = false): Promise<string> {
  const upstream = /_([^_]+)-1_[^_]+\.deb$/.exec(real)![1]!;
  const tree = `${out}.d`;
  const must = (...argv: string[]) => promisify(execFile)(argv[0]!, argv.slice(1), { timeout: 300_000, maxBuffer: 16 << 20 });
  await must('dpkg-deb', '-R', real, tree);
  const control = join(tree, 'DEBIAN/control');
  writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${version}-1`));
  const pkg = join(tree, 'usr/lib/bootstrap-agent/package.json');
  writeFileSync(pkg, readFileSync(pkg, 'utf8').replace(`"version": "${upstream}"`, `"version": "${version}"`));
  if (broken) writeFileSync(join(tree, 'usr/lib/bootstrap-agent/dist/bootstrap.cjs'), 'throw new Error("a broken build");\n');
  for (const cache of ['bootstrap.cjs.cache', 'bootstrap.cjs.query.cache']) rmSync(join(tree, 'usr/lib/bootstrap-agent/dist', cache), { force: true });
  rmSync(join(tree, 'DEBIAN/md5sums'));
  await must('dpkg-deb', '-Zgzip', '-z1', '--root-owner-group', '--build', tree, out);
  rmSync(tree, { recursive: true });
  return out;
}
