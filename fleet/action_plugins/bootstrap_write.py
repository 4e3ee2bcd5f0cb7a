# Action of rollout.yml and install.yml: writes a report (or the fleet status) on the controller,
# in the playbook's own process; the rollout's JSON and HTML in one task.
#
#   dir, name   the files are DIR/NAME.json (and DIR/NAME.html); DIR must exist (~ and $VARS are
#               expanded, as copy's dest was)
#   data        the document (a mapping), written as to_nice_json writes it, then a newline
#   html        true: also NAME.html, the page of filter_plugins/bootstrap_report.py's bs_report_html
#
# Choice: not `ansible.builtin.copy`. On the controller, copy still runs as a module: it packs
# itself, starts a Python for each file and answers through JSON, ~0.5 s a file at 50 hosts (the
# report's two files were 1.5 s of a 36 s rollout in bench/fleet). Here each file is written as
# copy writes it (a temporary file in the same dir, 0644, renamed over the old: a reader sees the
# old report or the new, never half of one), and --check writes nothing, as with copy.

from __future__ import annotations

import importlib.util
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.plugins.filter.core import to_nice_json


def _report_filters():
    """filter_plugins/bootstrap_report.py: the page, and its reader of lazy containers (_plain)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'filter_plugins', 'bootstrap_report.py')
    spec = importlib.util.spec_from_file_location('bootstrap_report_filters', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Read once, when ansible-playbook loads this action, not in every worker.
_REPORT = _report_filters()


def _bytes(text):
    # As copy wrote its content (to_bytes, surrogate_or_strict): a string that came in as bytes
    # that are not UTF-8 goes out as those bytes.
    return text.encode('utf-8', 'surrogateescape')


def _write(path, data):
    """`data` (bytes) to `path` whole or not at all: a temporary file beside it, 0644, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
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


def _same(path, data):
    try:
        with open(path, 'rb') as f:
            return f.read() == data
    except OSError:
        return False


def _mode_wrong(path):
    try:
        return os.stat(path).st_mode & 0o7777 != 0o644
    except OSError:
        return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('dir', 'name', 'data', 'html'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        folder = os.path.expanduser(os.path.expandvars(str(args.get('dir') or '.')))
        name = str(args.get('name') or '')
        if '/' in name or '\0' in name or name in ('', '.', '..'):
            raise AnsibleActionFail('bootstrap_write: name %r is not a file name' % name)
        if not os.path.isdir(folder):
            raise AnsibleActionFail('bootstrap_write: %s is not a directory (report_dir)' % folder)
        data = _REPORT._plain(args.get('data'))
        if not isinstance(data, dict):
            raise AnsibleActionFail('bootstrap_write: data is a %s, not a mapping' % type(data).__name__)
        try:
            files = {os.path.join(folder, name + '.json'): _bytes(to_nice_json(data) + '\n')}
            if boolean(args.get('html', False), strict=False):
                files[os.path.join(folder, name + '.html')] = _bytes(str(_REPORT.bs_report_html(data)))
        except ValueError as e:  # a string no encoding can write (a lone surrogate)
            raise AnsibleActionFail('bootstrap_write: cannot encode %s: %s' % (name, e))
        # Written when the content differs; a file whose content is right gets its mode put right.
        changed = [p for p, content in files.items() if not _same(p, content)]
        moded = [p for p in files if p not in changed and _mode_wrong(p)]
        if not self._play_context.check_mode:
            for p in changed + moded:
                try:
                    if p in changed:
                        _write(p, files[p])
                    else:
                        os.chmod(p, 0o644)
                except OSError as e:
                    raise AnsibleActionFail('bootstrap_write: cannot write %s: %s' % (p, e.strerror or e))
        result.update({'changed': bool(changed or moded), 'files': sorted(files)})
        return result
