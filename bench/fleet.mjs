// The same upgrade over a fleet of test servers (helpers/fleet: namespaces with sshd, the packed
// agent), at one or several fleet sizes in one run: fleet/rollout.yml (canary 1, batches 4 and the
// rest, forks 10) against plain ssh + `xargs -P 10` doing the same work — a server.status --json
// on every host, then the same canary and batches. Per size: both wall times and their ratio, the
// controller's CPU per host and its peak memory; then the agent's peak RSS per run.
// Goals: at most 1.5x plain ssh at 50 hosts; controller CPU per host flat from 20 to 50 hosts;
// under 60 MB agent peak RSS (an upgrade with a callback).
//
// The controller's CPU and memory are those of a cgroup (v1 cpuacct and memory, made per run),
// so they include every process a run starts, ssh ControlPersist masters too (daemons that
// /usr/bin/time would miss). Memory is the cgroup's own peak (memory.max_usage_in_bytes), kept
// by the kernel at no cost to the run: what its processes allocated, shared pages charged once
// (ten forks of Ansible are not ten Ansibles), and the page cache of files it wrote or read first
// (a few MB here: Ansible's temporary files, the report). BENCH_PSS=1 instead samples the sum of the
// proportional set sizes (PSS) of its processes every 0.25 s, as this bench first did: reading
// smaps_rollup of a dozen 200 MB Ansible processes four times a second costs this 2-core machine
// CPU that the timed run then lacks, the more so the more processes it has (two rounds at 50
// hosts: the playbook's median wall time 41.1 s sampled, 37.8 s not; plain ssh's 24.6 and 23.2 s).
//
// Usage (root, after node scripts/build.mjs): node bench/fleet.mjs [SIZES] [ROUNDS]
//   SIZES: 20 (default) or a list, 20,50: one fleet of the largest size, each size its first N
//   hosts; rounds interleave sizes and the two ways, so the machine's load hits all alike.
// BENCH_DEBUG=1 prints the plain runs' agent RSS and the playbook's time per task;
// BENCH_BASELINE=DIR (another fleet/ folder) runs that playbook too, interleaved.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { fleetUnavailable, installAgent, makeFleet, newFleetDir, removeFleetDir } = await import(join(root, 'dist/test/helpers/fleet.js'));
const { iniWith } = await import(join(root, 'dist/test/helpers/phases.js'));

const sizes = String(process.argv[2] ?? 20).split(',').map(Number);
const ROUNDS = Number(process.argv[3] ?? 3);
const largest = Math.max(...sizes);
// BENCH_BASELINE=DIR: another fleet/ (rollout.yml, ansible.cfg, plugins; e.g. main's) run in each
// round too, right after this one: before and after a change, measured in one run.
const baseline = process.env.BENCH_BASELINE || null;
if (sizes.some((n) => !Number.isInteger(n) || n < 6)) throw new Error('sizes are whole numbers of at least 6 hosts (canary 1, batches 4 and the rest)');
const why = fleetUnavailable();
if (why) {
  console.log(`fleet bench skipped: ${why}`);
  process.exit(0);
}

/** A cgroup (v1 cpuacct + memory) of our own for one measured run; removed after it. */
function cgroup(name) {
  const dirs = ['cpuacct', 'memory'].map((c) => `/sys/fs/cgroup/${c}/${name}`);
  for (const d of dirs) mkdirSync(d);
  const procs = () => (existsSync(dirs[1]) ? readFileSync(join(dirs[1], 'cgroup.procs'), 'utf8').split('\n').filter(Boolean) : []);
  return {
    dirs,
    procs,
    cpuSeconds: () => Number(readFileSync(join(dirs[0], 'cpuacct.usage'), 'utf8')) / 1e9,
    peakKb: () => Number(readFileSync(join(dirs[1], 'memory.max_usage_in_bytes'), 'utf8')) / 1024,
    /** Kills what is left in it (the run's ssh masters: ours) and removes it. */
    remove() {
      for (let i = 0; i < 50 && procs().length; i++) {
        for (const pid of procs()) spawnSync('kill', ['-9', pid]);
        spawnSync('sleep', ['0.1']);
      }
      for (const d of dirs) if (existsSync(d)) rmdirSync(d);
    },
  };
}

/** The sum of the PSS (kB) of `pids`, each read from /proc (a process gone meanwhile counts 0). */
function pssKb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone since listed
    }
  }
  return kb;
}

const dir = newFleetDir();
let fleet;
let receiverPid;
let current; // the measured run's cgroup
const cleanup = () => {
  if (receiverPid) spawnSync('kill', [String(receiverPid)]);
  current?.remove();
  fleet?.teardown();
  removeFleetDir(dir);
};
// Interrupted (Ctrl-C, a timeout's SIGTERM): the namespaces, sshds and cgroups go all the same.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });
}
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
  let t0 = Date.now();
  fleet = makeFleet({ hosts: largest, ini, phases, bin, dir: join(dir, 'f') });
  console.log(`fleet of ${largest} hosts up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // A callback receiver in the hub namespace (every upgrade posts one).
  const receiver = spawnSync('sh', ['-c', `ip netns exec ${fleet.hub} ${process.execPath} -e "require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end())}).listen(8099,'fd00:b5::1');setTimeout(()=>{},3600000)" >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
  receiverPid = Number(receiver.stdout.trim());
  t0 = Date.now();
  for (const h of fleet.hosts) fleet.runIn(h, [agent, 'server.provision', '-q']);
  console.log(`provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // One measured run in the hub namespace: wall time, the cgroup's CPU and its peak memory.
  let runNo = 0;
  const timed = async (argv, env = {}) => {
    const cg = cgroup(`bsbench-${process.pid}-${runNo++}`);
    current = cg;
    try {
      const enter = `for d in ${cg.dirs.join(' ')}; do echo $$ > $d/cgroup.procs; done; exec "$@"`;
      const started = process.hrtime.bigint();
      const child = spawn('sh', ['-c', enter, 'sh', 'ip', 'netns', 'exec', fleet.hub, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      let peak = 0;
      const sample = process.env.BENCH_PSS ? setInterval(() => (peak = Math.max(peak, pssKb(cg.procs()))), 250) : undefined;
      const code = await new Promise((resolve) => child.on('close', resolve));
      clearInterval(sample);
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}:\n${out.slice(-4000)}`);
      if (process.env.BENCH_DEBUG && argv[0] === 'ansible-playbook') console.log(out.split('\n').slice(-45).join('\n'));
      return { wall, cpu: cg.cpuSeconds(), peakMb: (sample ? peak : cg.peakKb()) / 1024 };
    } finally {
      current = undefined;
      cg.remove();
    }
  };

  const key = join(fleet.dir, 'clientkey');
  const ssh = `ssh -i ${key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`;
  // The inventory of the first n hosts.
  const inventoryOf = (n) => {
    const path = join(dir, `inventory-${n}.ini`);
    const keep = new Set(fleet.hosts.slice(0, n).map((h) => h.name));
    writeFileSync(path, readFileSync(fleet.inventory, 'utf8').split('\n').filter((l) => !/^host\d+ /.test(l) || keep.has(l.split(' ')[0])).join('\n'));
    return path;
  };
  // Plain ssh + xargs -P 10: status everywhere, then canary 1, batches 4 and the rest.
  const plainRun = (n, to) => {
    const addresses = fleet.hosts.slice(0, n).map((h) => h.address);
    const batches = [addresses.slice(0, 1), addresses.slice(1, 5), addresses.slice(5)];
    return timed(['sh', '-c', [
      `printf '%s\\n' ${addresses.join(' ')} | xargs -P 10 -I{} ${ssh} root@{} ${bin} server.status --json > /dev/null`,
      ...batches.map((b) => `printf '%s\\n' ${b.join(' ')} | xargs -P 10 -I{} ${ssh} root@{} ${bin} product.upgrade haproxy --to ${to} --json > /dev/null`),
    ].join(' && ')]);
  };
  const ansibleRun = (n, to, round, fleetDir = join(root, 'fleet')) => {
    const vars = join(dir, 'vars.json');
    writeFileSync(vars, JSON.stringify({ command: 'upgrade', product: 'haproxy', version: to, canary: 1, batches: [4, n - 5], report_dir: dir }));
    return timed(['ansible-playbook', '-i', inventoryOf(n), join(fleetDir, 'rollout.yml'), '-e', `@${vars}`], {
      ANSIBLE_CONFIG: join(fleetDir, 'ansible.cfg'),
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'),
      // A fresh control path each run: no run reuses the connections of the one before.
      ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, `cp-${n}-${round}-${fleetDir === baseline ? 'base' : 'new'}`),
      // BENCH_DEBUG=1: where the playbook's time goes, task by task.
      ...(process.env.BENCH_DEBUG ? { ANSIBLE_CALLBACKS_ENABLED: 'ansible.posix.profile_tasks' } : {}),
    });
  };
  const rss = () => readFileSync(rssLog, 'utf8').trim().split('\n').filter(Boolean).map(Number);

  // Rounds interleave sizes and the two ways: in each round every size upgrades its hosts twice,
  // plain ssh then the playbook, to versions that only go up.
  const results = Object.fromEntries(sizes.map((n) => [n, []]));
  const allRss = [];
  let version = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const n of sizes) {
      version++;
      writeFileSync(rssLog, '');
      const plain = await plainRun(n, `3.${version}.0`);
      allRss.push(...rss());
      if (process.env.BENCH_DEBUG) console.log(readFileSync(rssLog, 'utf8'));
      writeFileSync(rssLog, '');
      const ansible = await ansibleRun(n, `3.${version}.1`, r);
      allRss.push(...rss());
      const base = baseline ? await ansibleRun(n, `3.${version}.2`, r, baseline) : null;
      allRss.push(...rss());
      results[n].push({ plain, ansible, ratio: ansible.wall / plain.wall, base });
      if (base) console.log(`  round ${r + 1}, ${n} hosts: baseline ansible ${base.wall.toFixed(1)} s (${(base.cpu / n).toFixed(3)} s CPU/host, ${base.peakMb.toFixed(0)} MB), ratio ${(base.wall / plain.wall).toFixed(2)}`);
      console.log(`  round ${r + 1}, ${n} hosts: plain ${plain.wall.toFixed(1)} s (${(plain.cpu / n).toFixed(3)} s CPU/host, ${plain.peakMb.toFixed(0)} MB), ansible ${ansible.wall.toFixed(1)} s (${(ansible.cpu / n).toFixed(3)} s CPU/host, ${ansible.peakMb.toFixed(0)} MB), ratio ${(ansible.wall / plain.wall).toFixed(2)}`);
    }
  }
  report(results, allRss);
} finally {
  cleanup();
}

function report(results, allRss) {
  const mb = (kb) => (kb / 1024).toFixed(0);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  };
  const col = (n, f) => median(results[n].map(f));
  const memory = process.env.BENCH_PSS ? 'PSS' : 'memory';
  console.log(`fleet: ${sizes.join(' and ')} hosts, canary 1, batches 4 and the rest, forks 10, ${ROUNDS} rounds, median of rounds; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores`);
  const rows = [
    ['', ...sizes.map((n) => `${n} hosts`)],
    ['plain ssh wall (s)', ...sizes.map((n) => col(n, (r) => r.plain.wall).toFixed(1))],
    ['ansible wall (s)', ...sizes.map((n) => col(n, (r) => r.ansible.wall).toFixed(1))],
    ['ratio (goal <= 1.5)', ...sizes.map((n) => col(n, (r) => r.ratio).toFixed(2))],
    ['plain CPU/host (s)', ...sizes.map((n) => col(n, (r) => r.plain.cpu / n).toFixed(3))],
    ['ansible CPU/host (s)', ...sizes.map((n) => col(n, (r) => r.ansible.cpu / n).toFixed(3))],
    [`plain peak ${memory} (MB)`, ...sizes.map((n) => col(n, (r) => r.plain.peakMb).toFixed(0))],
    [`ansible peak ${memory} (MB)`, ...sizes.map((n) => col(n, (r) => r.ansible.peakMb).toFixed(0))],
    ...(baseline
      ? [
          ['baseline ratio', ...sizes.map((n) => col(n, (r) => r.base.wall / r.plain.wall).toFixed(2))],
          ['baseline CPU/host (s)', ...sizes.map((n) => col(n, (r) => r.base.cpu / n).toFixed(3))],
          ['CPU this / baseline', ...sizes.map((n) => col(n, (r) => r.ansible.cpu / r.base.cpu).toFixed(2))],
        ]
      : []),
  ];
  for (const row of rows) console.log(`  ${row[0].padEnd(24)}${row.slice(1).map((c) => c.padStart(10)).join('')}`);
  if (sizes.length > 1) {
    const [a, b] = [sizes[0], sizes.at(-1)];
    const per = (n) => col(n, (r) => r.ansible.cpu / n);
    console.log(`  ansible CPU/host ${b} vs ${a} hosts: ${((per(b) / per(a) - 1) * 100).toFixed(0)}% (goal: flat within noise)`);
  }
  console.log(`  agent peak RSS: max ${mb(Math.max(...allRss))} MB, median ${mb(median(allRss))} MB over ${allRss.length} runs (goal < 60 MB for an upgrade with a callback)`);
}
