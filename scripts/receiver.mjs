// `npm run receiver`: the reference receiver on this checkout, SQLite in receiver-data/, a key made
// on first start. node:sqlite needs Node 22.13+: on an older `node` with no newer one at hand
// (BOOTSTRAP_RECEIVER_NODE, the bootstrap-agent-node package's), the official Node 24 binary is
// fetched once from the npm registry (`node-linux-ARCH`, the way the test suite gets its Nodes)
// into receiver-data/node, where the launcher finds it.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const data = join(root, 'receiver-data');
const [major, minor] = process.versions.node.split('.').map(Number);
const newEnough = major > 22 || (major === 22 && minor >= 13);
const haveOther = process.env.BOOTSTRAP_RECEIVER_NODE || existsSync('/usr/lib/bootstrap-agent/node/bin/node') || existsSync(join(data, 'node/bin/node'));

if (!newEnough && !haveOther) fetchNode();
const args = [join(root, 'receiver/bin/bootstrap-receiver'), '--secret-file', join(data, 'callback.secret'), '--init-secret', ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { stdio: 'inherit', cwd: root });
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => child.kill(s));
child.on('exit', (code, signal) => (process.exitCode = code ?? 128 + (constants.signals[signal] ?? 0)));

function fetchNode() {
  const { nodeVersions } = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `import { nodeVersions } from '${join(root, 'dist/test/helpers/node-bins.js')}'; process.stdout.write(JSON.stringify({ nodeVersions }))`], { encoding: 'utf8' }));
  const version = nodeVersions.lts24;
  console.error(`receiver: node:sqlite needs Node 22.13 or later, this is ${process.version}: fetching Node ${version} (npm registry, node-linux-${process.arch}) into receiver-data/node`);
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const work = mkdtempSync(join(data, '.node-partial-'));
  try {
    const tgz = execFileSync('npm', ['pack', `node-linux-${process.arch}@${version}`, '--silent'], { cwd: work, encoding: 'utf8', timeout: 600_000 }).trim().split('\n').at(-1);
    execFileSync('tar', ['xzf', tgz], { cwd: work, timeout: 120_000 });
    renameSync(join(work, 'package'), join(data, 'node'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
