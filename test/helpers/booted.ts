// Booted Debian machines for the tests: systemd as PID 1 under systemd-nspawn, one network
// namespace per machine made by the test (it outlives the machine's reboots), reached over ssh.
//
// Root filesystems are built once by mmdebstrap into /var/tmp/bootstrap-test-rootfs/<suite>-<key>
// (the key hashes the recipe; published whole by helpers/publish.ts, so a half-built one is never
// used; rebuilt after a week so security updates come in) with everything the tests install
// against, so that nothing inside a machine needs the network. A machine boots an overlayfs copy
// (lower: the cached root, upper and work: the test's dir) with its own /etc/machine-id, host
// name and root's authorized_keys. When it reboots, systemd-nspawn exits 133 and the harness
// boots it again on the same overlay, as systemd-nspawn@.service does. Tear-down powers it off
// (killing what is left in its namespace), unmounts and deletes everything, even after a failure.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishOnce } from './publish.js';

const cacheDir = '/var/tmp/bootstrap-test-rootfs';
const tmpBase = '/var/tmp';
const maxAgeMs = 7 * 24 * 3600_000;
const sshOptions = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=6'];

export type Suite = 'bookworm' | 'trixie';

/** What every machine has: systemd, sshd, python3 for ansible; trixie's nodejs (20.19) for the arch:all package. */
export const rootfsPackages: Record<Suite, string[]> = {
  bookworm: ['systemd', 'systemd-sysv', 'dbus', 'iproute2', 'openssh-server', 'python3'],
  trixie: ['systemd', 'systemd-sysv', 'dbus', 'iproute2', 'openssh-server', 'python3', 'nodejs'],
};

// Timers that would start apt, dpkg or fs work while a test installs a package, and nothing else.
const masked = ['apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer', 'e2scrub_reap.service', 'fstrim.timer'];
const customize = `for u in ${masked.join(' ')}; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done`;

/** Why booted machines cannot run here, or false. */
export function bootedUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'booted machines need root (mounts, network namespaces, systemd-nspawn)';
  for (const tool of ['systemd-nspawn', 'mmdebstrap', 'ip', 'ssh', 'ssh-keygen']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `booted machines need ${tool} (.ci/run installs it)`;
  }
  return false;
}

/**
 * What an earlier test process killed before its tear-down (a CI timeout) left: its machines'
 * namespaces (bs-PID-bs-SUITE), their processes, overlay mounts and dirs
 * (/var/tmp/bootstrap-booted-PID-*) and cgroups, when that PID no longer runs.
 */
export async function sweepStale(): Promise<void> {
  const dead = (pid: string) => pid !== String(process.pid) && !existsSync(`/proc/${pid}`);
  for (const ns of (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
    const pid = /^bs-(\d+)-bs-(bookworm|trixie)$/.exec(ns)?.[1];
    if (pid && dead(pid)) {
      await killNetns(ns);
      await run(['ip', 'netns', 'del', ns]);
    }
  }
  for (const name of existsSync(tmpBase) ? readdirSync(tmpBase) : []) {
    const pid = /^bootstrap-booted-(\d+)-/.exec(name)?.[1];
    if (!pid || !dead(pid)) continue;
    for (const suite of Object.keys(rootfsPackages)) {
      const merged = join(tmpBase, name, suite, 'merged');
      if (existsSync(merged) && (await run(['mountpoint', '-q', merged])).code === 0) await unmount(merged);
    }
    rmSync(join(tmpBase, name), { recursive: true, force: true });
  }
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']) {
    for (const name of existsSync(root) ? readdirSync(root) : []) {
      const pid = /^bootstrap-booted-(\d+)-/.exec(name)?.[1];
      if (pid && dead(pid)) removeCgroup(name);
    }
  }
}

/** A dir for this test process's machines (swept by sweepStale if it is killed). */
export function machinesDir(): string {
  return mkdtempSync(join(tmpBase, `bootstrap-booted-${process.pid}-`));
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv without blocking the event loop (two machines' scenarios run at once). */
export function run(argv: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const opts = { timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 << 20, killSignal: 'SIGKILL' as const, env: options.env ?? process.env, cwd: options.cwd };
    const child = execFile(argv[0]!, argv.slice(1), opts, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? `\n${err.message}` : '') });
    });
    // A command that exits without reading its input (most do) closes the pipe: EPIPE is no error here.
    child.stdin?.on('error', () => {});
    if (options.input === undefined) child.stdin?.end();
    else child.stdin?.end(options.input);
  });
}

/** The cached root filesystem of `suite`, built the first time (about 100 s). */
export async function rootfs(suite: Suite): Promise<string> {
  const recipe = JSON.stringify({ suite, packages: rootfsPackages[suite], customize, variant: 'minbase' });
  const dir = join(cacheDir, `${suite}-${createHash('sha256').update(recipe).digest('hex').slice(0, 12)}`);
  const fresh = () => existsSync(dir) && Date.now() - statSync(dir).mtimeMs < maxAgeMs;
  if (fresh()) return dir;
  await publishOnce(dir, async (work) => {
    const argv = ['mmdebstrap', '--variant=minbase', `--include=${rootfsPackages[suite].join(',')}`, `--customize-hook=${customize}`, suite, join(work, 'root')];
    const r = await run(argv, { timeoutMs: 900_000 });
    if (r.code !== 0) throw new Error(`mmdebstrap ${suite} failed (${r.code}):\n${r.stderr.slice(-4000)}`);
    // A week-old root goes; another test process's fresh one is as good (and may be in use).
    if (!fresh()) rmSync(dir, { recursive: true, force: true });
    return join(work, 'root');
  }, fresh);
  return dir;
}

export interface Machine {
  name: string;
  netns: string;
  /** The machine's / as mounted (write here before it boots, or read). */
  merged: string;
  /** How many times systemd-nspawn started it (1 + reboots). */
  boots(): number;
  /** Runs a shell command line in the machine over ssh, as root. */
  ssh(command: string, options?: { input?: string; timeoutMs?: number }): Promise<Result>;
  /** As ssh, throwing with the output unless it exits 0; gives stdout. */
  sh(command: string, options?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Writes a file in the machine (parents made). */
  put(path: string, content: string, mode?: string): Promise<void>;
  /** Waits (bounded) until sshd answers and systemd has finished booting. */
  ready(timeoutMs?: number): Promise<void>;
  /** Waits (bounded) until the machine runs a boot other than `bootId`. */
  rebooted(bootId: string, timeoutMs?: number): Promise<string>;
  /** Starts argv in the machine's network namespace, on the test's side (a receiver, ansible's ssh). */
  spawnInNetns(argv: string[]): ChildProcess;
  /** The console, for failure messages. */
  console(): string;
  teardown(): Promise<void>;
}

export interface MachineOptions {
  rootfs: string;
  /** Per-machine dir (upper, work, mount point, console log); removed by teardown. */
  dir: string;
  /** Host name and nspawn machine name: letters, digits and '-'. */
  name: string;
  /** ssh private key (its .pub beside it) that logs in as root. */
  sshKey: string;
  /** Read-only binds: host path → path inside. */
  bindRo?: Record<string, string>;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Mounts the overlay, writes the machine's identity, makes its namespace and boots it. */
export async function bootMachine(o: MachineOptions): Promise<Machine> {
  const merged = join(o.dir, 'merged');
  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(o.dir, d), { recursive: true });
  const netns = `bs-${process.pid}-${o.name}`.slice(0, 60);
  const cleanups: (() => Promise<unknown> | void)[] = [];
  const teardown = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    rmSync(o.dir, { recursive: true, force: true });
  };
  try {
    const m = await mountAndStart(o, merged, netns, cleanups);
    return { ...m, teardown };
  } catch (e) {
    await teardown();
    throw e;
  }
}

async function mountAndStart(o: MachineOptions, merged: string, netns: string, cleanups: (() => Promise<unknown> | void)[]): Promise<Omit<Machine, 'teardown'>> {
  const must = async (argv: string[]) => {
    const r = await run(argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.code} ${r.stderr}`);
  };
  await must(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${o.rootfs},upperdir=${join(o.dir, 'upper')},workdir=${join(o.dir, 'work')}`, merged]);
  cleanups.push(() => unmount(merged));
  writeFileSync(join(merged, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
  writeFileSync(join(merged, 'etc/hostname'), `${o.name}\n`);
  mkdirSync(join(merged, 'root/.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(join(merged, 'root/.ssh'), 0o700);
  writeFileSync(join(merged, 'root/.ssh/authorized_keys'), readFileSync(`${o.sshKey}.pub`), { mode: 0o600 });
  await must(['ip', 'netns', 'add', netns]);
  cleanups.push(() => run(['ip', 'netns', 'del', netns]));
  await must(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  const nspawn = startNspawn(o, merged, netns);
  cleanups.push(() => nspawn.stop());
  return machineApi(o, merged, netns, nspawn);
}

/** umount, retried: a process of the machine that is still exiting may keep it busy a moment. */
async function unmount(path: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await run(['umount', path])).code === 0) return;
    await delay(200);
  }
  await run(['umount', '-l', path]);
}

interface Nspawn {
  boots(): number;
  console(): string;
  stop(): Promise<void>;
}

/**
 * Each boot of each machine in a cgroup of its own. With --keep-unit, systemd-nspawn puts the
 * machine under the cgroup it was started in; started from the root (this host has no systemd),
 * two machines side by side shared `/payload`, and one's systemd failed to set up a unit's cgroup
 * the other's had just made or removed (bootstrap-resume.service: status=219/CGROUP, seen once in
 * CI). Best effort: where a hierarchy cannot be written, nspawn runs where it is.
 */
const cgroupRoots = 'if [ -e /sys/fs/cgroup/cgroup.controllers ]; then roots=/sys/fs/cgroup; else roots="/sys/fs/cgroup/systemd /sys/fs/cgroup/unified"; fi';
const inOwnCgroup = `${cgroupRoots}; for h in $roots; do [ -d "$h" ] && mkdir -p "$h/$0" 2>/dev/null && echo $$ > "$h/$0/cgroup.procs" 2>/dev/null; done; exec systemd-nspawn "$@"`;

function removeCgroup(cgroup: string): void {
  spawnSync('sh', ['-c', `${cgroupRoots}; for h in $roots; do [ -d "$h/$0" ] && find "$h/$0" -depth -type d -exec rmdir {} + 2>/dev/null; done; true`, cgroup], { timeout: 10_000 });
}

/** systemd-nspawn, booted again when the machine reboots (exit 133), until stop(). */
function startNspawn(o: MachineOptions, merged: string, netns: string): Nspawn {
  const log = join(o.dir, 'console.log');
  const binds = Object.entries(o.bindRo ?? {}).map(([host, inside]) => `--bind-ro=${host}:${inside}`);
  const argv = ['--register=no', '--keep-unit', '-q', '-D', merged, '-M', o.name, `--network-namespace-path=/run/netns/${netns}`, '--console=read-only', ...binds, '-b'];
  let child: ChildProcess;
  let boots = 0;
  let stopping = false;
  let exited!: Promise<void>;
  const start = () => {
    boots++;
    const fd = openSync(log, 'a');
    const cgroup = `bootstrap-booted-${process.pid}-${o.name}-${boots}`;
    child = spawn('sh', ['-c', inOwnCgroup, cgroup, ...argv], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        removeCgroup(cgroup);
        if (code === 133 && !stopping) start();
        resolve();
      });
    });
  };
  start();
  return {
    boots: () => boots,
    console: () => (existsSync(log) ? readFileSync(log, 'utf8').slice(-6000) : ''),
    async stop() {
      stopping = true;
      // SIGTERM: nspawn asks the machine's systemd to power off.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), 60_000)));
      const outcome = await Promise.race([exited.then(() => 'exited'), timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        await killNetns(netns);
        child.kill('SIGKILL');
        await exited;
      }
      // Whatever a test started in the namespace (a receiver, ssh) goes too.
      await killNetns(netns);
    },
  };
}

async function killNetns(netns: string): Promise<void> {
  const pids = (await run(['ip', 'netns', 'pids', netns])).stdout.split(/\s+/).filter(Boolean);
  for (const pid of pids) spawnSync('kill', ['-9', pid]);
}

function machineApi(o: MachineOptions, merged: string, netns: string, nspawn: Nspawn): Omit<Machine, 'teardown'> {
  // One connection kept open (ControlPersist) serves the many short commands of a test: a new
  // handshake for each costs a second on a loaded machine. After a reboot the next one connects again.
  // A short socket path (one host per dir): a Unix socket's path has at most 107 bytes.
  const multiplex = ['-o', 'ControlMaster=auto', '-o', `ControlPath=${join(o.dir, 'ssh')}`, '-o', 'ControlPersist=60s'];
  const ssh: Machine['ssh'] = (command, options = {}) =>
    run(['ip', 'netns', 'exec', netns, 'ssh', '-i', o.sshKey, ...sshOptions, ...multiplex, 'root@127.0.0.1', command], options);
  const sh: Machine['sh'] = async (command, options) => {
    const r = await ssh(command, options);
    if (r.code !== 0) throw new Error(`${o.name}: \`${command}\` exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const ready: Machine['ready'] = async (timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    let last: Result | null = null;
    while (Date.now() < deadline) {
      last = await ssh('systemctl is-system-running --wait', { timeoutMs: Math.max(1000, deadline - Date.now()) });
      if (/^(running|degraded)$/m.test(last.stdout)) return;
      await delay(300);
    }
    throw new Error(`${o.name}: not booted within ${timeoutMs} ms: ${JSON.stringify(last)}\n${nspawn.console()}`);
  };
  return {
    name: o.name,
    netns,
    merged,
    boots: nspawn.boots,
    ssh,
    sh,
    async put(path, content, mode = '644') {
      await sh(`mkdir -p "$(dirname '${path}')" && cat > '${path}' && chmod ${mode} '${path}'`, { input: content });
    },
    ready,
    async rebooted(bootId, timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const r = await ssh('cat /proc/sys/kernel/random/boot_id', { timeoutMs: 10_000 });
        if (r.code === 0 && r.stdout.trim() !== bootId) {
          await ready(Math.max(1000, deadline - Date.now()));
          return r.stdout.trim();
        }
        await delay(500);
      }
      throw new Error(`${o.name}: did not come back from its reboot within ${timeoutMs} ms\n${nspawn.console()}`);
    },
    spawnInNetns: (argv) => spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }),
    console: nspawn.console,
  };
}

/** A new ssh key pair at `path` (and `path`.pub). */
export async function sshKeyPair(path: string): Promise<string> {
  const r = await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path]);
  if (r.code !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return path;
}

export interface Request {
  method: string;
  url: string;
  delivery: string;
  body: any;
}

export interface Receiver {
  url: string;
  requests: Request[];
  /** Waits (bounded) for a request `match` accepts (from the `from`th on), and gives it. */
  waitFor(match: (r: Request) => boolean, what: string, timeoutMs?: number, from?: number): Promise<Request>;
  close(): void;
}

// The receiver runs inside the machine's namespace (so the machine reaches it at 127.0.0.1): every
// request answers 200 and is printed on stdout as one JSON line.
const receiverScript = `
const port = Number(process.argv[1]);
require('node:http').createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    let parsed = body;
    try { parsed = body ? JSON.parse(body) : null; } catch {}
    process.stdout.write(JSON.stringify({ method: req.method, url: req.url, delivery: String(req.headers['x-bootstrap-delivery'] ?? ''), body: parsed }) + '\\n');
    res.end('ok');
  });
}).listen(port, '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

/** An HTTP receiver on 127.0.0.1:`port` in the machine's network namespace. */
export async function receiver(machine: Machine, port = 8099): Promise<Receiver> {
  const child = machine.spawnInNetns([process.execPath, '-e', receiverScript, String(port)]);
  const requests: Request[] = [];
  let buffer = '';
  let listening!: () => void;
  const up = new Promise<void>((resolve) => (listening = resolve));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (line === 'listening') listening();
      else requests.push(JSON.parse(line) as Request);
    }
  });
  const failed = new Promise<never>((_, reject) => child.on('exit', (code) => reject(new Error(`receiver exited ${code}: ${stderr}`))));
  failed.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`receiver not listening: ${stderr}`)), 30_000)));
  await Promise.race([up, failed, late]).finally(() => clearTimeout(timer));
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async waitFor(match, what, timeoutMs = 120_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = requests.slice(from).find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`${machine.name}: no ${what} within ${timeoutMs} ms; received: ${JSON.stringify(requests.map((r) => [r.method, r.url, r.body?.kind, r.body?.action, r.body?.status, r.body?.id]))}`);
        await delay(250);
      }
    },
    close: () => child.kill('SIGKILL'),
  };
}

/**
 * An ansible inventory (group `booted`) for these machines: ansible's ssh and sftp run inside
 * each machine's namespace through a small wrapper, each with its own ControlPath dir (every
 * machine is root@127.0.0.1:22 to ssh).
 */
export function ansibleInventory(machines: Machine[], sshKey: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const lines = ['[booted]'];
  for (const m of machines) {
    const wrap = (tool: string) => {
      const path = join(dir, `${tool}-${m.name}`);
      writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${m.netns} ${tool} "$@"\n`, { mode: 0o755 });
      return path;
    };
    const cp = join(dir, `cp-${m.name}`);
    mkdirSync(cp, { recursive: true });
    lines.push(
      `${m.name} ansible_host=127.0.0.1 ansible_user=root ansible_ssh_private_key_file=${sshKey} ansible_python_interpreter=/usr/bin/python3 ` +
        `ansible_ssh_executable=${wrap('ssh')} ansible_sftp_executable=${wrap('sftp')} ansible_scp_executable=${wrap('scp')} ansible_control_path_dir=${cp} ` +
        `ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'`,
    );
  }
  const inventory = join(dir, 'inventory.ini');
  writeFileSync(inventory, `${lines.join('\n')}\n`);
  return inventory;
}
