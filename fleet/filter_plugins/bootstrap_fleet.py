# Filters of rollout.yml (found by ansible-playbook beside the playbook): what a server prints is
# data, never a template, and a server's garbage is that server's failure, never the controller's.
#
# ansible-core 2.14 templates a string again wherever it is read back from a variable unless the
# string is marked unsafe. A registered result is marked, but what from_json, set_fact or a Jinja
# expression (`~`, join) makes of it is not: a server printing `{{ lookup('pipe', ...) }}` would
# run it on the controller. So the playbook parses a server's output only with bs_server_json (its
# free text, stderr, with bs_server_text) and stores what it derived from one only through
# bs_inert; all three mark every string (wrap_var). 2.19+ never templates data it did not read from
# the playbook or the inventory; the marks change nothing there (wrap_var only drops a trust it
# never had).
#
# JSON that parses can still be of a shape the playbook's templates cannot read (a string where
# they loop over a list, a missing key, which 2.19 refuses as undefined): the task would fail on
# the controller, for the whole batch. So bs_server_json also checks each document against the
# shape the playbook reads (one checker per kind of document) and hands the playbook only that,
# normalized: every key present, every value of its type, every string valid Unicode. Anything
# else (nesting too deep for Python's parser and NaN included) is that host's failure.

from __future__ import annotations

import json
import math

from ansible.utils.unsafe_proxy import wrap_var

_LINE_MAX = 200
_MESSAGE_MAX = 2000


class _Unexpected(Exception):
    """A document of the wrong shape; its message says what is off (types only, never values)."""


def _clean(text):
    """`text` as valid Unicode: a lone surrogate (a JSON escape such as \\ud800, or a byte that is
    not UTF-8) cannot be encoded as UTF-8, which the report and its table are; it becomes '?'."""
    return text.encode('utf-8', 'replace').decode('utf-8')


def _first_line(text):
    line = text.lstrip().split('\n', 1)[0].rstrip('\r')
    if not line:
        return '(nothing)'
    return _clean(line if len(line) <= _LINE_MAX else line[:_LINE_MAX] + '…')


def _kind_of(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    return 'an array' if isinstance(value, list) else 'an object'


def _count(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


# What a key of a document may hold: a test, and its name in the report.
_TYPES = {
    'string': (lambda v: isinstance(v, str), 'a string'),
    'boolean': (lambda v: isinstance(v, bool), 'a boolean'),
    'number': (_count, 'a number (0 or more)'),
    'array': (lambda v: isinstance(v, list), 'an array'),
    'object': (lambda v: isinstance(v, dict), 'an object'),
    'scalar': (lambda v: not isinstance(v, (list, dict)), 'a string, number or boolean'),
}


def _get(doc, where, key, want, required=True):
    """doc[key], of type `want` (a key of _TYPES; with '?', or null). An absent key that is not
    `required` reads as null."""
    if key not in doc:
        if required:
            raise _Unexpected(f'{where}{key} is missing')
        return None
    value = doc[key]
    nullable = want.endswith('?')
    test, shown = _TYPES[want.rstrip('?')]
    if value is None and nullable:
        return None
    if not test(value):
        raise _Unexpected(f'{where}{key} is {_kind_of(value)}, not {shown}{" or null" if nullable else ""}')
    return _clean(value) if isinstance(value, str) else value


def _objects(doc, where, key):
    """doc[key]: an array of objects, each with the path it is reported by."""
    items = _get(doc, where, key, 'array')
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Unexpected(f'{where}{key}[{i}] is {_kind_of(item)}, not an object')
    return [(f'{where}{key}[{i}].', item) for i, item in enumerate(items)]


def _status(doc):
    """server.status: what preflight judges by (mode, provisioned, each product's version) and who
    holds the run lock (its plain fields)."""
    return {
        'mode': _get(doc, '', 'mode', 'string'),
        'provisioned': _get(doc, '', 'provisioned', 'boolean'),
        'versions': {_get(p, at, 'name', 'string'): _get(p, at, 'version', 'string?') for at, p in _objects(doc, '', 'products')},
        'lock_holder': _holder(_get(doc, '', 'lock', 'object?', False) or {}),
        # The phases tree's version (fleet/install.yml records it); an older agent has none.
        'phases_version': _get(doc, '', 'phases_version', 'string?', False),
    }


def _holder(lock):
    holder = _get(lock, 'lock.', 'holder', 'object?', False)
    if holder is None:
        return None
    return {_clean(k): _clean(v) if isinstance(v, str) else v for k, v in holder.items() if not isinstance(v, (list, dict))}


def _products(doc):
    """product.get: each setting's value, keyed `product.name` (a backout puts it back as it was),
    and which of them are secret: the agent prints a secret's value as ******** (never the value),
    so a secret can never be put back from here, and the playbook must know which ones they are."""
    settings = {}
    secrets = []
    for at, product in _objects(doc, '', 'products'):
        for sat, s in _objects(product, at, 'settings'):
            key = _get(s, sat, 'product', 'string') + '.' + _get(s, sat, 'name', 'string')
            settings[key] = _get(s, sat, 'value', 'scalar?')
            if _get(s, sat, 'secret', 'boolean?', False):
                secrets.append(key)
    return {'settings': settings, 'secrets': secrets}


def _sub(doc, where, key, fields):
    """doc[key], an object or null/absent, as {field: value} of `fields` (name -> type; each
    optional: an older agent prints fewer), or None."""
    obj = _get(doc, where, key, 'object?', False)
    if obj is None:
        return None
    return {name: _get(obj, f'{where}{key}.', name, want if want.endswith('?') else want + '?', False) for name, want in fields.items()}


def _fleet_status(doc):
    """server.status for command=status: what the fleet's table shows of each server."""
    callbacks = _sub(doc, '', 'callbacks', {'pending': 'number', 'dead': 'number'}) or {}
    return {
        'mode': _get(doc, '', 'mode', 'string'),
        'provisioned': _get(doc, '', 'provisioned', 'boolean'),
        'phases_version': _get(doc, '', 'phases_version', 'scalar?', False),
        'versions': {_get(p, at, 'name', 'string'): _get(p, at, 'version', 'string?') for at, p in _objects(doc, '', 'products')},
        'last_run': _sub(doc, '', 'last_run', {'id': 'string', 'action': 'string', 'status': 'string', 'finished_at': 'string', 'label': 'string'}),
        'last_success': _sub(doc, '', 'last_success', {'id': 'string', 'finished_at': 'string'}),
        'failures_since': _get(doc, '', 'failed_runs_since_success', 'number?', False) or 0,
        'paused_run': _sub(doc, '', 'paused_run', {'id': 'string', 'reason': 'string', 'requested_at': 'string'}),
        'disabled': _sub(doc, '', 'disabled', {'reason': 'string', 'since': 'string', 'by': 'string'}),
        'last_checkup': _sub(doc, '', 'last_checkup', {'healthy': 'boolean', 'finished_at': 'string'}),
        'last_verify': _sub(doc, '', 'last_verify', {'status': 'string', 'drift': 'number', 'finished_at': 'string'}),
        'callbacks': {'pending': callbacks.get('pending') or 0, 'dead': callbacks.get('dead') or 0},
    }


def _message(text):
    return text if len(text) <= _MESSAGE_MAX else text[:_MESSAGE_MAX] + '…'


def _run(doc):
    """A run's outcome (or the agent's error): its id, its status (`rebooting`: paused for a
    reboot; null for an error), its duration, where it failed ('' if not). The same of
    `runs.show ID --json` (the run's journal)."""
    error = _get(doc, '', 'error', 'object?', False)
    if error is not None:
        return {**_KINDS['run'][1], 'failed_at': _message(_get(error, 'error.', 'message', 'string'))}
    failure = _get(doc, '', 'failure', 'object?', False)
    return {
        'id': _get(doc, '', 'id', 'string?'),
        'status': _get(doc, '', 'status', 'string'),
        'exit_code': _get(doc, '', 'exit_code', 'number?', False),
        'duration_ms': _get(doc, '', 'duration_ms', 'number?', False),
        'failed_at': '' if failure is None else _message('%s/%s: %s' % tuple(_get(failure, 'failure.', k, 'string') for k in ('phase', 'step', 'message'))),
        **_run_detail(doc, failure),
    }


def _run_detail(doc, failure):
    """What the report shows of a run beside its row (all optional: an older agent prints less): its
    times, the mode and versions after it, its step counts, where it failed, the settings it changed."""
    products = _get(doc, '', 'products', 'object?', False) or {}
    counts = _get(doc, '', 'counts', 'object?', False) or {}
    settings = _get(doc, '', 'settings', 'object?', False) or {}
    return {
        'started_at': _get(doc, '', 'started_at', 'string?', False),
        'finished_at': _get(doc, '', 'finished_at', 'string?', False),
        'mode': _get(doc, '', 'mode', 'string?', False),
        'versions': None if not products else {_clean(k): _get(products, 'products.', k, 'string?') for k in products},
        'steps': None if not counts else {_clean(k): _get(counts, 'counts.', k, 'number') for k in counts},
        'failure': None if failure is None else {k: _message(_get(failure, 'failure.', k, 'string')) for k in ('phase', 'step', 'message')},
        'settings_changed': {_get(s, at, 'product', 'string') + '.' + _get(s, at, 'setting', 'string'): _get(s, at, 'value', 'scalar?')
                             for at, s in _objects(settings, 'settings.', 'changed')} if 'changed' in settings else {},
    }


def _install(doc):
    """fleet/install-agent.sh's result: how it ended, the package before and after, the tree's version."""
    return {
        'status': _get(doc, '', 'status', 'string'),
        'message': _message(_get(doc, '', 'message', 'string')),
        'package_before': _get(doc, '', 'package_before', 'string?', False),
        'package_after': _get(doc, '', 'package_after', 'string?', False),
        'put_back': bool(_get(doc, '', 'put_back', 'boolean?', False)),
        'installed_at': _get(doc, '', 'installed_at', 'string?', False),
        'waited_s': _get(doc, '', 'waited_s', 'number?', False),
        'phases_version': _get(doc, '', 'phases_version', 'string?', False),
    }


# Each kind of document: its checker (the normal form, or _Unexpected), its normal form when there
# is none to read (not run, or a problem), so the playbook reads every key unguarded, and what
# names it in a problem (preflight reads two).
_KINDS = {
    'status': (_status, {'mode': None, 'provisioned': False, 'versions': {}, 'lock_holder': None, 'phases_version': None}, 'server.status: '),
    'install': (_install, {'status': None, 'message': '', 'package_before': None, 'package_after': None, 'put_back': False,
                           'installed_at': None, 'waited_s': None, 'phases_version': None}, ''),
    'products': (_products, {'settings': {}, 'secrets': []}, 'product.get: '),
    'run': (_run, {'id': None, 'status': None, 'exit_code': None, 'duration_ms': None, 'failed_at': '', 'started_at': None, 'finished_at': None,
                   'mode': None, 'versions': None, 'steps': None, 'failure': None, 'settings_changed': {}}, ''),
    # An answer the playbook reads nothing of but that it is one (settings put back).
    'object': (lambda doc: {}, {}, ''),
    # What the playbook itself printed in a document's place (no product.get but for a set).
    'null': (None, None, ''),
    'fleet_status': (_fleet_status, {'mode': None, 'provisioned': False, 'phases_version': None, 'versions': {}, 'last_run': None, 'last_success': None,
                                     'failures_since': 0, 'paused_run': None, 'disabled': None, 'last_checkup': None, 'last_verify': None,
                                     'callbacks': {'pending': 0, 'dead': 0}}, 'server.status: '),
    # One line of text, not JSON (`bootstrap --version`): valid Unicode, at most 200 characters.
    'line': (None, '', ''),
}


def _finite(text):
    number = float(text)
    if not math.isfinite(number):
        raise ValueError('not a finite number')
    return number


def _no_constant(name):
    raise ValueError(name + ' is not JSON')


def _read(text, kinds):
    """The normal forms of the documents `text` holds, one per kind; or raises ValueError
    (unparseable, its message the report's) or _Unexpected."""
    decoder = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)
    docs = []
    pos = 0
    for kind in kinds:
        check, _, label = _KINDS[kind]
        if kind == 'line':
            end = text.find('\n', pos)
            end = len(text) if end < 0 else end
            line = text[pos:end].strip()
            docs.append(_clean(line if len(line) <= _LINE_MAX else line[:_LINE_MAX] + '…'))
            pos = min(end + 1, len(text))
            continue
        start = len(text) - len(text[pos:].lstrip())
        try:
            doc, pos = decoder.raw_decode(text, start)
        except RecursionError:
            raise _Unexpected('nested too deeply') from None
        except ValueError:
            raise ValueError('unparseable output: ' + _first_line(text[start:])) from None
        if check is None:
            if doc is not None:
                raise _Unexpected(f'{_kind_of(doc)} where nothing was asked')
            docs.append(None)
            continue
        if not isinstance(doc, dict):
            raise _Unexpected(f'{label}{_kind_of(doc) if doc is not None else "nothing (null)"}, not an object')
        try:
            docs.append(check(doc))
        except _Unexpected as e:
            raise _Unexpected(f'{label}{e}') from None
    if text[pos:].strip():
        raise ValueError('unparseable output: ' + _first_line(text[pos:]))
    return docs


def bs_server_json(text, *kinds):
    """What a server printed, read as one JSON document per kind named ('status', 'products',
    'run', 'install', 'object', 'null', 'fleet_status'; 'line': a line of text), one after another: {'docs': [normal form, ...], 'problem': ''}; when
    it printed anything else, the empty normal forms and 'unparseable output: <the first line from
    where it stopped making sense>' or 'unexpected output: <what is off>'. None (nothing was run)
    reads as the empty forms, no problem. Never raises. Every string in the result is marked unsafe."""
    problem = ''
    docs = [_KINDS[kind][1] for kind in kinds]
    if text is not None:
        try:
            docs = _read(str(text), kinds)
        except ValueError as e:
            problem = str(e)
        except (_Unexpected, RecursionError) as e:
            problem = 'unexpected output: ' + (str(e) if isinstance(e, _Unexpected) else 'nested too deeply')
    if problem:
        docs = [_KINDS[kind][1] for kind in kinds]
    return wrap_var({'docs': docs, 'problem': problem})


def bs_server_text(text):
    """What a server printed as free text (stderr, for the report): valid Unicode, at most
    _MESSAGE_MAX characters, marked unsafe."""
    return wrap_var(_message(_clean(str(text or '')).strip()))


def _plain(value):
    """`value` with plain dicts and lists: 2.19 hands a filter the lists a template made as lazy
    containers, which wrap_var cannot rebuild ('Direct construction of lazy containers')."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def bs_inert(value):
    """`value` with every string in it marked unsafe: never templated when read back."""
    return wrap_var(_plain(value))


class FilterModule:
    def filters(self):
        return {'bs_server_json': bs_server_json, 'bs_server_text': bs_server_text, 'bs_inert': bs_inert}
