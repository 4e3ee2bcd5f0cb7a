# Action of rollout.yml: writes the report (or the fleet status) on the controller, in one task,
# in this process.
#
#   dir, name   the files are DIR/NAME.json (and DIR/NAME.html); DIR must exist
#   data        the document, written as JSON (4-space indent, sorted keys, as to_nice_json)
#   html        true: also NAME.html, the page of filter_plugins/bootstrap_report.py's bs_report_html
#
# Choice: not `ansible.builtin.copy`. On the controller, copy still runs as a module: it packs
# itself, starts a Python for each file and answers through JSON, ~0.5 s a file at 50 hosts (the
# report's two files were 1.5 s of a 36 s rollout in bench/fleet). Here each file is written as
# copy writes it (a temporary file in the same dir, 0644, renamed over the old: a reader sees the
# old report or the new, never half of one), and --check writes nothing, as with copy.

from __future__ import annotations

import importlib.util
import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.ajson import AnsibleJSONEncoder
from ansible.plugins.action import ActionBase


def _report_filters():
    """filter_plugins/bootstrap_report.py: the page, and its reader of lazy containers (_plain)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'filter_plugins', 'bootstrap_report.py')
    spec = importlib.util.spec_from_file_location('bootstrap_report_filters', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Read once, when ansible-playbook loads this action, not in every worker.
_REPORT = _report_filters()


def _write(path, text):
    """`text` to `path` whole or not at all: a temporary file beside it, 0644, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _same(path, text):
    try:
        with open(path, encoding='utf-8') as f:
            return f.read() == text
    except (OSError, UnicodeDecodeError):
        return False


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('dir', 'name', 'data', 'html'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        folder, name = str(args.get('dir') or '.'), str(args['name'])
        if '/' in name or name in ('', '.', '..'):
            raise AnsibleActionFail('bootstrap_write: name %r is not a file name' % name)
        if not os.path.isdir(folder):
            raise AnsibleActionFail('bootstrap_write: %s is not a directory (report_dir)' % folder)
        data = _REPORT._plain(args['data'])
        files = {os.path.join(folder, name + '.json'): json.dumps(data, cls=AnsibleJSONEncoder, indent=4, sort_keys=True, separators=(',', ': ')) + '\n'}
        if boolean(args.get('html', False), strict=False):
            files[os.path.join(folder, name + '.html')] = str(_REPORT.bs_report_html(data))
        changed = [p for p, text in files.items() if not _same(p, text)]
        if not self._play_context.check_mode:
            try:
                for p in changed:
                    _write(p, files[p])
            except OSError as e:
                raise AnsibleActionFail('bootstrap_write: cannot write %s: %s' % (getattr(e, 'filename', None) or folder, e.strerror or e))
        result.update({'changed': bool(changed), 'files': sorted(files)})
        return result
