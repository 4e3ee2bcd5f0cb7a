// Test servers for fleet rollouts, all on this machine: a "hub" network namespace of ours with a
// bridge (IPv6 ULA, traffic never leaves our namespaces), and per server a network namespace on
// that bridge with its own mount and UTS namespace: its own hostname (its namespace's name, unique
// to this test process), its own /etc/bootstrap and /var/bootstrap (bind mounts), and `sshd -D` on
// its own address, from Debian's openssh-server unpacked with dpkg-deb (no daemon starts on the
// machine's port 22). The agent is packed and installed once (npm pack + npm install -g --prefix).
// Ansible runs in the hub namespace. Tear-down kills every process in our namespaces and deletes
// them, even after a failed test.
//
// A server never writes to this machine's /etc, /var or /run: in its mount namespace they are an
// overlay over the machine's /etc and /var (its writes land in the test's temp dir) and a tmpfs,
// so its default paths, its step scripts and a bind mount gone (a mount point removed on the
// machine detaches it in every namespace) all stay inside the test; nothing is created on the
// machine as a mount point. Commands enter a server only through its sshd's namespaces, checked.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './cli.js';

export interface FleetHost {
  name: string;
  address: string;
  netns: string;
  /** Seen as /etc/bootstrap and /var/bootstrap inside the host. */
  etc: string;
  state: string;
  sshd: ChildProcess | null;
}

export interface Fleet {
  dir: string;
  hub: string;
  hosts: FleetHost[];
  /** With `lb`: the haproxy host (group lb), its runtime API socket and its frontend URL. */
  lb: { host: FleetHost; socket: string; url: string } | null;
  /** `show stat` of the lb's haproxy: server → status (UP, DOWN, MAINT, DRAIN …), or another column (e.g. check_status). */
  lbStatus(column?: string): Record<string, string>;
  bin: string;
  inventory: string;
  /** Runs fleet/rollout.yml (or another playbook of fleet/) in the hub namespace with these extra vars (and ansible settings in `env`). */
  rollout(vars: Record<string, unknown>, timeoutMs?: number, env?: Record<string, string>, playbook?: string): { code: number | null; output: string; report: any };
  /** The same, without blocking this process (a test acts on the hosts meanwhile: reboots them). */
  rolloutAsync(vars: Record<string, unknown>, timeoutMs?: number, env?: Record<string, string>): Promise<{ code: number | null; output: string; report: any }>;
  /** The host "goes down": every process in its network namespace is killed (its sshd, sessions, agent). */
  powerOff(host: FleetHost): void;
  /** The host "boots": its sshd again, in fresh mount and UTS namespaces (a new /run; its /etc/bootstrap, /var/bootstrap and overlays as they were). */
  powerOn(host: FleetHost): void;
  stopSshd(host: FleetHost): void;
  /** Starts `argv` inside the host (its namespaces: network, mount, hostname). */
  spawnIn(host: FleetHost, argv: string[]): ChildProcess;
  /** Runs `argv` inside the host and waits for it. */
  runIn(host: FleetHost, argv: string[]): { code: number | null; stdout: string; stderr: string };
  teardown(): void;
}

const sshdRoot = '/tmp/bootstrap-test-sshd';

/** Whether this machine can make the fleet (root, ip netns, ansible, an unpackable sshd). */
export function fleetUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'fleet tests need root (network namespaces)';
  for (const tool of ['ip', 'unshare', 'ansible-playbook', 'ssh', 'ssh-keygen', 'dpkg-deb', 'apt-get']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `fleet tests need ${tool} (.ci/run installs it)`;
  }
  const probe = `bs-probe-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'network namespaces cannot be made here';
  spawnSync('ip', ['netns', 'del', probe]);
  return false;
}

/** Debian packages downloaded into `dir` (apt-get with `aptArgs`) and unpacked into `dir/root`, not installed. */
function unpackDebs(dir: string, packages: string[], aptArgs: string[] = []): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('apt-get', [...aptArgs, 'download', ...packages], { cwd: dir, stdio: 'pipe', timeout: 180_000 });
  for (const deb of readdirSync(dir).filter((n) => n.endsWith('.deb'))) execFileSync('dpkg-deb', ['-x', join(dir, deb), join(dir, 'root')]);
}

/** sshd from Debian's openssh-server (and libwrap0) unpacked once, not installed. */
function unpackSshd(): { sshd: string; libs: string } {
  const sshd = join(sshdRoot, 'root/usr/sbin/sshd');
  if (!existsSync(sshd)) unpackDebs(sshdRoot, ['openssh-server', 'libwrap0']);
  return { sshd, libs: join(sshdRoot, 'root/usr/lib/x86_64-linux-gnu') };
}

const newerAnsibleRoot = '/tmp/bootstrap-test-ansible-core';

/**
 * ansible-core from Debian 13 (trixie; 2.19 there: native templating, a Jinja sandbox, strict
 * conditionals), downloaded once with apt-get against its own lists and cache (the machine's apt
 * state is untouched), unpacked with dpkg-deb, and run by Debian 12's Python with the libraries
 * and community.general that Debian 12's ansible brought. `env` puts it first on PATH.
 */
export function newerAnsible(): { version: string; env: Record<string, string> } {
  const bin = join(newerAnsibleRoot, 'bin');
  const playbook = join(bin, 'ansible-playbook');
  if (!existsSync(playbook)) {
    const [lists, cache, sources, unpacked] = ['lists', 'cache', 'sources.list', 'root'].map((n) => join(newerAnsibleRoot, n)) as [string, string, string, string];
    mkdirSync(join(lists, 'partial'), { recursive: true });
    mkdirSync(join(cache, 'archives/partial'), { recursive: true });
    writeFileSync(sources, 'deb http://deb.debian.org/debian trixie main\n');
    const apt = ['-qq', '-o', `Dir::Etc::SourceList=${sources}`, '-o', 'Dir::Etc::SourceParts=/dev/null', '-o', `Dir::State::Lists=${lists}`, '-o', `Dir::Cache=${cache}`, '-o', 'APT::Sandbox::User=root'];
    execFileSync('apt-get', [...apt, 'update'], { stdio: 'pipe', timeout: 180_000 });
    unpackDebs(newerAnsibleRoot, ['ansible-core'], apt);
    mkdirSync(bin, { recursive: true });
    const script = `#!/bin/sh\nPYTHONPATH=${unpacked}/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH} exec /usr/bin/python3 ${unpacked}/usr/bin/ansible-playbook "$@"\n`;
    writeFileSync(`${playbook}.tmp`, script, { mode: 0o755 });
    renameSync(`${playbook}.tmp`, playbook);
  }
  const version = /core ([\d.]+)/.exec(execFileSync(playbook, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  return { version, env: { PATH: `${bin}:${process.env.PATH}` } };
}

/** The packed agent, installed once per test file into `prefix`. */
export function installAgent(dir: string): string {
  const prefix = join(dir, 'prefix');
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir, root], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(dir, out)], { stdio: 'ignore', timeout: 240_000 });
  return join(prefix, 'bin/bootstrap');
}

export interface FleetOptions {
  hosts: number;
  /** bootstrap.ini of each host (its phases are /etc/bootstrap/phases). */
  ini: (name: string) => string;
  /** Writes the host's phase tree under `phases`. */
  phases: (phases: string, name: string) => void;
  bin: string;
  dir: string;
  /** A haproxy host in group lb, whose backend `app` holds every host's port 8080. */
  lb?: boolean;
  /** Started inside each host once its sshd is up (e.g. the app server). */
  start?: (host: FleetHost, spawnIn: (argv: string[]) => ChildProcess) => void;
  /** For ansible-playbook (e.g. PATH to another ansible-core). */
  env?: Record<string, string>;
  /**
   * /usr of each host an overlay too (writes land in the test's temp dir), so that dpkg inside a
   * host (fleet/install.yml) installs there, never into this machine's /usr. /bin, /sbin and /lib
   * are links into /usr on Debian 12+ (merged /usr): they follow.
   */
  overlayUsr?: boolean;
  /**
   * root's login shell in the servers (their /etc/passwd is a copy): /bin/sh keeps this machine's
   * /root/.bashrc (pyenv init, whose rehash lock once made every ssh command wait 60 s) out of
   * every command Ansible runs there. Default: /bin/sh (a reboot scenario's kill -9 of a host's
   * processes can land in a rehash and leave its lock behind for every later ssh command).
   */
  rootShell?: string;
}

export function makeFleet(o: FleetOptions): Fleet {
  const { sshd, libs } = unpackSshd();
  const dir = o.dir;
  const tag = fleetTag();
  const hub = `${tag}-hub`;
  const hosts: FleetHost[] = [];
  const made: string[] = [];
  let lb: Fleet['lb'] = null;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  const teardown = () => {
    for (const ns of made) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) spawnSync('kill', ['-9', pid]);
    }
    for (const h of hosts) h.sshd?.kill('SIGKILL');
    for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  };
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'clientkey')]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'clientkey.pub')));
    const passwd = readFileSync('/etc/passwd', 'utf8');
    const withShell = passwd.replace(/^(root:[^:\n]*:0:0:[^:\n]*:[^:\n]*:).*$/m, `$1${o.rootShell ?? '/bin/sh'}`);
    writeFileSync(join(dir, 'passwd'), /^sshd:/m.test(withShell) ? withShell : `${withShell}sshd:x:65500:65534:sshd privsep:/run/sshd:/usr/sbin/nologin\n`);
    ip('netns', 'add', hub);
    made.push(hub);
    ip('-n', hub, 'link', 'set', 'lo', 'up');
    ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', hub, 'link', 'set', 'br0', 'up');
    ip('-n', hub, 'addr', 'add', 'fd00:b5::1/64', 'dev', 'br0', 'nodad');
    for (let i = 1; i <= o.hosts + (o.lb ? 1 : 0); i++) {
      const name = i > o.hosts ? 'lb01' : `host${String(i).padStart(2, '0')}`;
      const netns = `${tag}-${name}`;
      const address = `fd00:b5::${(0x100 + i).toString(16)}`;
      const hostDir = join(dir, name);
      const etc = join(hostDir, 'etc');
      const state = join(hostDir, 'state');
      mkdirSync(join(etc, 'phases'), { recursive: true });
      mkdirSync(state, { recursive: true, mode: 0o700 });
      for (const d of ['etc', 'etc-work', 'var', 'var-work', 'usr', 'usr-work']) mkdirSync(join(hostDir, 'overlay', d), { recursive: true });
      chmodSync(hostDir, 0o755);
      chmodSync(etc, 0o755);
      writeFileSync(join(etc, 'bootstrap.ini'), o.ini(name));
      o.phases(join(etc, 'phases'), name);
      ip('netns', 'add', netns);
      made.push(netns);
      ip('-n', hub, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      ip('-n', hub, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      ip('-n', netns, 'addr', 'add', `${address}/64`, 'dev', 'eth0', 'nodad');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
      const conf = join(dir, `sshd-${name}.conf`);
      writeFileSync(
        conf,
        [`ListenAddress [${address}]:22`, `HostKey ${join(dir, 'hostkey')}`, 'PermitRootLogin prohibit-password', `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no', 'PidFile none', 'MaxStartups 100', 'MaxSessions 100', 'Subsystem sftp internal-sftp'].join('\n') + '\n',
      );
      const host: FleetHost = { name, address, netns, etc, state, sshd: null };
      host.sshd = startSshd(host, hostDir, sshd, libs, conf, dir, o.overlayUsr ?? false);
      hosts.push(host);
    }
    waitForSshd(hub, hosts, join(dir, 'clientkey'));
    const enter = (h: FleetHost) => (argv: string[]) => spawn('nsenter', [...inHost(h), ...argv], { stdio: 'ignore' });
    for (const h of hosts.filter((x) => x.name !== 'lb01')) o.start?.(h, enter(h));
    if (o.lb) {
      const lbHost = hosts.find((h) => h.name === 'lb01')!;
      const socket = join(dir, 'lb-admin.sock');
      const cfg = join(dir, 'haproxy.cfg');
      writeFileSync(
        cfg,
        [
          'global',
          `  stats socket ${socket} mode 600 level admin`,
          'defaults',
          '  mode http',
          '  timeout connect 1s',
          '  timeout client 10s',
          '  timeout server 10s',
          '  retries 3',
          '  option redispatch',
          'frontend fe',
          `  bind [${lbHost.address}]:80`,
          '  default_backend app',
          'backend app',
          '  option httpchk GET /',
          // Checks every 250 ms, but a slow answer is not a dead server: on a loaded CI machine
          // two checks of 250 ms (haproxy's default check timeout is `inter`) both missed on the
          // two hosts still serving, and haproxy answered 503 once in a thousand requests.
          '  timeout check 2s',
          ...hosts.filter((h) => h.name !== 'lb01').map((h) => `  server ${h.name} [${h.address}]:8080 check inter 250 fall 3 rise 1`),
        ].join('\n') + '\n',
      );
      enter(lbHost)(['haproxy', '-db', '-f', cfg]);
      lb = { host: lbHost, socket, url: `http://[${lbHost.address}]/` };
      for (let i = 0; i < 100 && !existsSync(socket); i++) spawnSync('sleep', ['0.05']);
    }
  } catch (err) {
    teardown();
    throw err;
  }
  const inventory = join(dir, 'inventory.ini');
  writeFileSync(
    inventory,
    `[servers]\n${hosts.filter((h) => h.name !== 'lb01').map((h) => `${h.name} ansible_host=${h.address}`).join('\n')}\n\n` +
      // The lb host runs a Python module (community.general.haproxy): its interpreter is named,
      // since discovery on a test machine with pyenv shims on PATH can pick one that does not run.
      (lb ? `[lb]\nlb01 ansible_host=${lb.host.address} ansible_python_interpreter=/usr/bin/python3 lb_socket=${lb.socket} lb_backends='["app"]'\n\n` : '') +
      `[all:vars]\nansible_user=root\nansible_ssh_private_key_file=${join(dir, 'clientkey')}\nansible_ssh_common_args=-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR\nbootstrap_bin=${o.bin}\n`,
  );
  /** ansible-playbook's command line and options for a rollout with `vars`, and its JSON report once it ended. */
  const playbookCall = (vars: Record<string, unknown>, env: Record<string, string>, playbook = 'rollout.yml') => {
    const reportDir = mkdtempSync(join(dir, 'report-'));
    const varsFile = join(dir, `vars-${Date.now()}.json`);
    writeFileSync(varsFile, JSON.stringify({ report_dir: reportDir, ...vars }));
    const options = {
      cwd: join(root, 'fleet'),
      env: { ...process.env, ANSIBLE_CONFIG: join(root, 'fleet/ansible.cfg'), ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'), ANSIBLE_REMOTE_TEMP: join(dir, 'ansible-remote'), ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'cp'), ANSIBLE_NOCOLOR: '1', ...o.env, ...env },
    };
    const report = () => {
      const files = readdirSync(reportDir).filter((n) => n.endsWith('.json'));
      return files.length ? JSON.parse(readFileSync(join(reportDir, files[0]!), 'utf8')) : null;
    };
    return { argv: ['ip', 'netns', 'exec', hub, 'ansible-playbook', '-i', inventory, join(root, 'fleet', playbook), '-e', `@${varsFile}`], options, report };
  };
  return {
    dir,
    hub,
    hosts: hosts.filter((h) => h.name !== 'lb01'),
    lb,
    lbStatus(column = 'status') {
      if (!lb) return {};
      // A path socket is reachable from any network namespace: ask haproxy from here.
      const ask = `const c=require('net').connect(${JSON.stringify(lb.socket)});let d='';c.on('data',x=>d+=x);c.on('end',()=>process.stdout.write(d));c.write('show stat\\n');`;
      const r = spawnSync(process.execPath, ['-e', ask], { encoding: 'utf8', timeout: 5000 });
      const lines = r.stdout.split('\n');
      const at = (lines[0] ?? '').replace(/^# /, '').split(',').indexOf(column);
      return Object.fromEntries(lines.filter((l) => l.startsWith('app,') && !l.startsWith('app,BACKEND')).map((l) => [l.split(',')[1]!, l.split(',')[at]!]));
    },
    bin: o.bin,
    inventory,
    rollout(vars, timeoutMs = 180_000, env = {}, playbook = 'rollout.yml') {
      const call = playbookCall(vars, env, playbook);
      const r = spawnSync(call.argv[0]!, call.argv.slice(1), { ...call.options, encoding: 'utf8', timeout: timeoutMs });
      return { code: r.status, output: `${r.stdout}\n${r.stderr}`, report: call.report() };
    },
    rolloutAsync(vars, timeoutMs = 180_000, env = {}) {
      const call = playbookCall(vars, env);
      const child = spawn(call.argv[0]!, call.argv.slice(1), { ...call.options, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      return new Promise((resolve) => child.on('close', (code) => resolve({ code, output, report: call.report() })));
    },
    powerOff(host) {
      for (const pid of spawnSync('ip', ['netns', 'pids', host.netns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean)) spawnSync('kill', ['-9', pid]);
      host.sshd = null;
    },
    powerOn(host) {
      const { sshd, libs } = unpackSshd();
      host.sshd = startSshd(host, join(dir, host.name), sshd, libs, join(dir, `sshd-${host.name}.conf`), dir, o.overlayUsr ?? false);
      waitForSshd(hub, [host], join(dir, 'clientkey'));
    },
    runIn(host, argv) {
      const r = spawnSync('nsenter', [...inHost(host), ...argv], { encoding: 'utf8', timeout: 60_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    spawnIn(host, argv) {
      return spawn('nsenter', [...inHost(host), ...argv], { stdio: 'ignore' });
    },
    stopSshd(host) {
      host.sshd?.kill('SIGKILL');
      host.sshd = null;
    },
    teardown,
  };
}

/** nsenter's arguments into the host's namespaces: its sshd's, never this machine's (a pid gone and reused). */
function inHost(h: FleetHost): string[] {
  const pid = h.sshd?.pid;
  const mnt = (p: string | number) => {
    try {
      return readlinkSync(`/proc/${p}/ns/mnt`);
    } catch {
      return null;
    }
  };
  if (pid === undefined || mnt(pid) === null || mnt(pid) === mnt('self')) throw new Error(`${h.name}: its sshd is not running, so it cannot be entered`);
  return ['--target', String(pid), '--mount', '--uts', '--net', '--'];
}

/** This test process's mark: in the name of every namespace it makes, and so in every test server's hostname. */
export function fleetTag(): string {
  return `bs${process.pid % 100000}`;
}

function startSshd(h: FleetHost, hostDir: string, sshd: string, libs: string, conf: string, dir: string, usr: boolean): ChildProcess {
  const overlay = (d: string) => `mount -t overlay overlay -o lowerdir=/${d},upperdir=${join(hostDir, 'overlay', d)},workdir=${join(hostDir, 'overlay', `${d}-work`)} /${d}`;
  const script = [
    `hostname ${h.netns}`,
    // /run first (sshd's privilege-separation dir, os-refresh-config's lock), then /etc and /var
    // of its own: the mount points below are made in the overlays, never on the machine.
    'mount -t tmpfs -o mode=0755 tmpfs /run',
    'mkdir -m 0755 /run/sshd',
    overlay('etc'),
    overlay('var'),
    ...(usr ? [overlay('usr')] : []),
    'mkdir -p /etc/bootstrap /var/bootstrap',
    `mount --bind ${join(dir, 'passwd')} /etc/passwd`,
    `mount --bind ${h.etc} /etc/bootstrap`,
    `mount --bind ${h.state} /var/bootstrap`,
    `LD_LIBRARY_PATH=${libs} exec ${sshd} -D -e -f ${conf}`,
  ].join(' && ');
  return spawn('ip', ['netns', 'exec', h.netns, 'unshare', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function waitForSshd(hub: string, hosts: FleetHost[], key: string): void {
  // One deadline for the whole fleet (a fleet of 50 for the bench): each host's tries are
  // bounded, but 100 tries of up to 2 s each, host after host, would not be.
  const deadline = Date.now() + 60_000 + 3_000 * hosts.length;
  for (const h of hosts) {
    let ok = false;
    for (let i = 0; i < 100 && !ok && Date.now() < deadline; i++) {
      ok = spawnSync('ip', ['netns', 'exec', hub, 'ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=2', `root@${h.address}`, 'hostname'], { encoding: 'utf8' }).stdout.trim() === h.netns;
      if (!ok) spawnSync('sleep', ['0.05']);
    }
    if (!ok) throw new Error(`sshd of ${h.name} did not come up`);
  }
}

/** This machine's own /etc/bootstrap and /var/bootstrap: null when absent, else each file in them (path → size and mtime). */
export type MachineDirs = Record<string, Record<string, string> | null>;

export function machineDirs(): MachineDirs {
  const out: MachineDirs = {};
  for (const root of ['/etc/bootstrap', '/var/bootstrap']) {
    if (!existsSync(root)) {
      out[root] = null;
      continue;
    }
    const files: Record<string, string> = {};
    const walk = (d: string, depth: number) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const st = lstatSync(p);
        files[p] = `${st.size} ${st.mtimeMs}`;
        if (st.isDirectory() && depth < 4) walk(p, depth + 1);
      }
    };
    walk(root, 0);
    out[root] = files;
  }
  return out;
}

/**
 * What test servers left in this machine's /etc/bootstrap and /var/bootstrap since `before`: a dir
 * that was absent and now exists, or a file new or changed since that names a server of this test
 * process (their hostnames carry fleetTag(); an agent installed and running here may change its own).
 */
export function leftOnMachine(before: MachineDirs): string[] {
  const now = machineDirs();
  const mark = `${fleetTag()}-`;
  return Object.entries(now).flatMap(([root, files]) => {
    if (files === null) return [];
    const was = before[root];
    if (!was) return [`${root} was created`];
    return Object.entries(files)
      .filter(([p, sig]) => was[p] !== sig && fileNames(p, mark))
      .map(([p]) => `${p} names a test server`);
  });
}

function fileNames(path: string, mark: string): boolean {
  try {
    return lstatSync(path).isFile() && lstatSync(path).size < 1 << 20 && readFileSync(path, 'utf8').includes(mark);
  } catch {
    return false; // gone since it was listed
  }
}

export function newFleetDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-fleet-'));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeFleetDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
