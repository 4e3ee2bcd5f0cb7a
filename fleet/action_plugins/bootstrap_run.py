# Action of rollout.yml (found by ansible-playbook beside the playbook): one server's run, in one
# task per server, run from the controller over the server's connection (no Python on the server).
#
#   1. `run`, a shell command line as `raw` sends it: the agent's run (its busy retry included);
#      unreachable here is the task's unreachable, as with `raw`.
#   2. A run that paused for a reboot one of its steps asked for (its --json says `rebooting`): the
#      server goes down and comes back; `show` + the run id (`runs.show ID --json`) is asked every
#      `delay` s, whatever the connection does meanwhile (a refused or dropped connection is a
#      server still rebooting: the connection is reset and asked again, as ansible's reboot action
#      does), until the run has ended (success, failure, refused) or `reboot_timeout` s have passed
#      since the pause. Ansible's own retries (until) end at the first unreachable, so the loop is here.
#      The run's own output may never arrive: the reboot can stop the server's ssh session (and the
#      agent's shell) before it is sent, and the run task's connection drops. Then, given `find`
#      (`runs.list --json`) and the run's `label`, the server is asked as it comes back (bounded by
#      `reboot_timeout` from the drop) for the run of that label; one that paused for a reboot is
#      waited for as above (`dropped`: true in the result). No such run: unreachable, as before.
#   3. `health` (heartbeat.checkup, retried by its own shell loop), once, after a successful run
#      behind a load balancer (`health_after_run`) and after every resumed run that succeeded: a
#      server that rebooted must be healthy before it counts.
#
# It decides no outcome (never `failed`): it returns what the server printed, as data (stdout, rc,
# stderr of the run and the health check; `resumed`: the last answer of `show` and whether the wait
# timed out), and the playbook judges it with the filters of filter_plugins/bootstrap_fleet.py,
# which this action also uses, never anything else, to read a run's status.

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import time

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.unsafe_proxy import wrap_var

_FINAL = ('success', 'failure', 'refused')


def _filters():
    """filter_plugins/bootstrap_fleet.py, the one reader of what a server prints."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'filter_plugins', 'bootstrap_fleet.py')
    spec = importlib.util.spec_from_file_location('bootstrap_fleet_filters', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Read once, when ansible-playbook loads this action (before it forks a worker per server), not
# compiled again in every worker.
_READ = _filters().bs_server_json


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('run', 'show', 'find', 'label', 'health', 'health_after_run', 'reboot_timeout', 'delay'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if self._play_context.check_mode:
            # As `raw`: in --check nothing runs.
            result['skipped'] = True
            return result
        args = self._task.args
        timeout = float(args.get('reboot_timeout', 900))
        delay = float(args.get('delay', 5))
        read = _READ
        try:
            ran = self._execute(args['run'])
        except AnsibleConnectionFailure as dropped:
            # Unreachable, as a `raw` run would be, unless a reboot of this run dropped it.
            ran = self._dropped_by_reboot(args, timeout, delay)
            if ran is None:
                raise dropped
        result.update({'stdout': ran['stdout'], 'stderr': ran['stderr'], 'rc': ran['rc'], 'changed': ran['rc'] == 0, 'resumed': None, 'dropped': 'since' in ran})
        doc = read(ran['stdout'], 'run')
        paused = ran['rc'] == 0 and not doc['problem'] and (doc['docs'][0]['status'] == 'rebooting' or 'since' in ran) and doc['docs'][0]['id']
        healthy_wanted = ran['rc'] == 0 and not doc['problem'] and not paused and boolean(args.get('health_after_run', False), strict=False)
        if paused:
            run_id = str(doc['docs'][0]['id'])
            started = ran.get('since', time.monotonic())
            # What the operator watches meanwhile (the id is the server's: printable characters only).
            shown = ''.join(c if c.isprintable() else '?' for c in run_id[:80])
            self._display.display('%s: rebooting (run %s paused for a reboot%s); waiting up to %d s for it to come back and end' % (
                (task_vars or {}).get('inventory_hostname', '?'), shown, '; the connection dropped before its output arrived' if 'since' in ran else '', timeout))
            resumed = self._wait(read, str(args['show']) + ' ' + shlex.quote(run_id), timeout, delay, started)
            result['resumed'] = resumed
            answer = read(resumed['stdout'], 'run')
            healthy_wanted = not resumed['timed_out'] and not answer['problem'] and answer['docs'][0]['status'] == 'success'
        if healthy_wanted and args.get('health'):
            checked = self._ask(args['health'])
            result['stderr'] = (result['stderr'] or '') + ('' if checked is None else checked['stderr'])
        return wrap_var(result)

    def _execute(self, cmd):
        r = self._low_level_execute_command(cmd, executable=False)
        return {'stdout': r.get('stdout', ''), 'stderr': r.get('stderr', ''), 'rc': r.get('rc')}

    def _ask(self, cmd):
        """cmd's answer, or None when the server could not be reached (the connection is reset)."""
        try:
            return self._execute(cmd)
        except AnsibleConnectionFailure:
            self._reset()
            return None

    def _reset(self):
        # The connection kept open (ControlPersist) may be to the server's previous boot: a new one.
        try:
            self._connection.reset()
        except Exception:  # a connection without reset, or one already gone: the next call reconnects
            pass

    def _dropped_by_reboot(self, args, timeout, delay):
        """After the run's connection dropped: once the server answers `find`, `show` of the run
        with this label if it paused for a reboot, as the run's output (`since`: the drop); else None."""
        if not args.get('find') or not args.get('label'):
            return None
        since = time.monotonic()
        self._reset()
        while True:
            answer = self._ask(args['find'])
            if answer is not None:
                break
            if time.monotonic() - since + delay > timeout:
                return None
            time.sleep(delay)
        run_id = _paused_run_of(answer, str(args['label']))
        shown = run_id and self._ask(str(args['show']) + ' ' + shlex.quote(run_id))
        if not shown or shown['rc'] != 0:
            return None
        # rc 0: what the run exits with when it pauses; its outcome is the resumed run's.
        return {'stdout': shown['stdout'], 'stderr': shown['stderr'], 'rc': 0, 'since': since}

    def _wait(self, read, show, timeout, delay, started):
        """The last answer of `show` once it says the run ended, or `timeout` s after `started`
        (timed_out; `reachable`: whether the last try reached the server, `last_status` what it said)."""
        last = None
        status = None
        while True:
            answer = self._ask(show)
            if answer is not None:
                last = answer
                doc = read(answer['stdout'], 'run')
                status = None if doc['problem'] else doc['docs'][0]['status']
                if status in _FINAL:
                    break
            if time.monotonic() - started + delay > timeout:
                break
            time.sleep(delay)
        return {'stdout': None if last is None else last['stdout'], 'rc': None if last is None else last['rc'], 'timed_out': status not in _FINAL,
                'reachable': answer is not None, 'last_status': status, 'waited_s': round(time.monotonic() - started, 1)}


def _paused_run_of(answer, label):
    """The id of the newest run in `runs.list --json` with this label that paused for a reboot, or None."""
    if answer['rc'] != 0:
        return None
    try:
        runs = json.loads(answer['stdout']).get('runs')
    except (ValueError, AttributeError):
        return None
    for r in runs if isinstance(runs, list) else []:
        if isinstance(r, dict) and r.get('label') == label:
            ok = isinstance(r.get('id'), str) and isinstance(r.get('reboots'), list) and len(r['reboots']) > 0
            return r['id'] if ok else None
    return None
