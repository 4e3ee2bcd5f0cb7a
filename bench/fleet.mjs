// The same upgrade over 20 test servers (helpers/fleet: namespaces with sshd, the packed agent),
// side by side in one run: fleet/rollout.yml (canary 1, batches 4 and 15, forks 10) against plain
// ssh + `xargs -P 10` doing the same work — a server.status --json on every host, then the same
// canary and batches. Prints both wall times, their ratio, the controller's CPU seconds per host
// and the agent's peak RSS per host (an upgrade with a callback).
// Goal: at most 1.5x plain ssh, and under 60 MB agent peak RSS.
// Usage (root, after npm run build): node bench/fleet.mjs [HOSTS] [ROUNDS]; BENCH_DEBUG=1 prints
// the plain runs' peak RSS one by one and the playbook's time per task.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { fleetUnavailable, installAgent, makeFleet, newFleetDir, removeFleetDir } = await import(join(root, 'dist/test/helpers/fleet.js'));
const { iniWith } = await import(join(root, 'dist/test/helpers/phases.js'));

const n = Number(process.argv[2] ?? 20);
const ROUNDS = Number(process.argv[3] ?? 3);
const why = fleetUnavailable();
if (why) {
  console.log(`fleet bench skipped: ${why}`);
  process.exit(0);
}
const dir = newFleetDir();
let fleet;
try {
  const agent = installAgent(dir);
  // The agent on the hosts, with its peak RSS recorded per run.
  const rssLog = join(dir, 'rss.log');
  const bin = join(dir, 'bootstrap-measured');
  writeFileSync(bin, `#!/bin/sh\nexec /usr/bin/time -a -o ${rssLog} -f '%M' ${agent} "$@"\n`);
  chmodSync(bin, 0o755);
  const ini = () => `${iniWith({})}\n[callback]\nurl = http://[fd00:b5::1]:8099/cb\ntimeout = 2\n`;
  const phases = (p) => {
    mkdirSync(join(p, 'configure.d'), { recursive: true });
    writeFileSync(join(p, 'configure.d', '10-app'), '#!/bin/sh\necho "$BOOTSTRAP_VERSION" > /var/bootstrap/app-version\n', { mode: 0o755 });
  };
  mkdirSync(join(dir, 'f'));
  fleet = makeFleet({ hosts: n, ini, phases, bin, dir: join(dir, 'f') });
  // A callback receiver in the hub namespace (every upgrade posts one).
  const receiver = spawnSync('sh', ['-c', `ip netns exec ${fleet.hub} ${process.execPath} -e "require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end())}).listen(8099,'fd00:b5::1');setTimeout(()=>{},600000)" >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
  const receiverPid = Number(receiver.stdout.trim());
  for (const h of fleet.hosts) fleet.runIn(h, [agent, 'server.provision', '-q']);

  const timed = (argv, env = {}) => {
    const out = join(dir, `time-${Date.now()}`);
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-o', out, '-f', '%U %S', 'ip', 'netns', 'exec', fleet.hub, ...argv], { encoding: 'utf8', env: { ...process.env, ...env } });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const [user, sys] = readFileSync(out, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    if (process.env.BENCH_DEBUG && argv[0] === 'ansible-playbook') console.log(r.stdout.split('\n').slice(-40).join('\n'));
    return { wall, cpu: user + sys };
  };

  // Plain ssh + xargs -P 10: status everywhere, then canary 1, batches 4 and the rest.
  const key = join(fleet.dir, 'clientkey');
  const ssh = `ssh -i ${key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`;
  const addresses = fleet.hosts.map((h) => h.address);
  const batches = [addresses.slice(0, 1), addresses.slice(1, 5), addresses.slice(5)];
  const plainRun = (to) => timed(['sh', '-c', [
    `printf '%s\\n' ${addresses.join(' ')} | xargs -P 10 -I{} ${ssh} root@{} ${bin} server.status --json > /dev/null`,
    ...batches.map((b) => `printf '%s\\n' ${b.join(' ')} | xargs -P 10 -I{} ${ssh} root@{} ${bin} product.upgrade haproxy --to ${to} --json > /dev/null`),
  ].join(' && ')]);
  const ansibleRun = (to, round) => {
    const vars = join(dir, 'vars.json');
    writeFileSync(vars, JSON.stringify({ command: 'upgrade', product: 'haproxy', version: to, canary: 1, batches: [4, 15], report_dir: dir }));
    return timed(['ansible-playbook', '-i', fleet.inventory, join(root, 'fleet/rollout.yml'), '-e', `@${vars}`], {
      ANSIBLE_CONFIG: join(root, 'fleet/ansible.cfg'),
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'),
      // A fresh control path each round: no round reuses the connections of the one before.
      ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, `cp-${round}`),
      // BENCH_DEBUG=1: where the playbook's time goes, task by task.
      ...(process.env.BENCH_DEBUG ? { ANSIBLE_CALLBACKS_ENABLED: 'ansible.posix.profile_tasks' } : {}),
    });
  };
  const rss = () => readFileSync(rssLog, 'utf8').trim().split('\n').filter(Boolean).map(Number);

  // Rounds interleave the two (the machine's load moves a single run by a second): each round
  // upgrades every host twice, plain ssh then the playbook, to versions that only go up.
  const rounds = [];
  const allRss = [];
  for (let r = 0; r < ROUNDS; r++) {
    writeFileSync(rssLog, '');
    const plain = plainRun(`3.${r}.0`);
    allRss.push(...rss());
    if (process.env.BENCH_DEBUG) console.log(readFileSync(rssLog, 'utf8'));
    writeFileSync(rssLog, '');
    const ansible = ansibleRun(`3.${r}.1`, r);
    allRss.push(...rss());
    rounds.push({ plain, ansible, ratio: ansible.wall / plain.wall });
  }
  spawnSync('kill', [String(receiverPid)]);

  const mb = (kb) => (kb / 1024).toFixed(0);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`fleet: ${n} hosts, canary 1, batches 4 and ${n - 5}, forks 10, ${ROUNDS} rounds`);
  for (const [i, r] of rounds.entries()) {
    console.log(`  round ${i + 1}: plain ssh + xargs -P 10 ${r.plain.wall.toFixed(1)} s (${(r.plain.cpu / n).toFixed(2)} s CPU/host), ansible rollout.yml ${r.ansible.wall.toFixed(1)} s (${(r.ansible.cpu / n).toFixed(2)} s CPU/host), ratio ${r.ratio.toFixed(2)}`);
  }
  console.log(`  median ratio ${median(rounds.map((r) => r.ratio)).toFixed(2)} (goal <= 1.5); controller CPU per host: plain ${median(rounds.map((r) => r.plain.cpu / n)).toFixed(2)} s, ansible ${median(rounds.map((r) => r.ansible.cpu / n)).toFixed(2)} s`);
  console.log(`  agent peak RSS: max ${mb(Math.max(...allRss))} MB, median ${mb(median(allRss))} MB over ${allRss.length} runs (goal < 60 MB for an upgrade with a callback)`);
} finally {
  fleet?.teardown();
  removeFleetDir(dir);
}
