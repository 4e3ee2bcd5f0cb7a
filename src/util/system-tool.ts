// One of the system's own tools (systemd-detect-virt for a fact, chattr for a hint), never a
// program of the configuration: looked up in the system's dirs only (not the agent's PATH),
// bounded at 2 s, and never a failure of the command: it resolves with whether it exited 0 and
// what it printed (nothing when it is not there).

import { childProcess } from './lazy.js';

const systemPath = '/usr/bin:/bin:/usr/sbin:/sbin';

export function runSystemTool(file: string, args: string[]): Promise<{ ok: boolean; stdout: string }> {
  return new Promise((resolve) => {
    childProcess().execFile(file, args, { timeout: 2000, env: { PATH: systemPath } }, (err, stdout) => resolve({ ok: !err, stdout }));
  });
}
