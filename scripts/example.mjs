// `npm start`: runs `bootstrap server.provision` on the embedded example (etc/bootstrap.ini and
// phases/), with the state dir and the files the steps write inside the clone: no root needed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const command = args.length ? args : ['server.provision'];
const r = spawnSync(
  process.execPath,
  [join(root, 'bin/bootstrap'), ...command, '--config', join(root, 'etc/bootstrap.ini'), '--state-dir', join(root, 'example/state'), '--phases-dir', join(root, 'phases')],
  { stdio: 'inherit', env: { ...process.env, BOOTSTRAP_ROOT: join(root, 'example/root') } },
);
process.exitCode = r.status ?? 1;
