# Filters of rollout.yml (found by ansible-playbook beside the playbook): what a server prints is
# data, never a template, and a server's garbage is that server's failure, never the controller's.
#
# ansible-core 2.14 templates a string again wherever it is read back from a variable unless the
# string is marked unsafe. A registered result is marked, but what from_json, set_fact or a Jinja
# expression (`~`, join) makes of it is not: a server printing `{{ lookup('pipe', ...) }}` would
# run it on the controller. So the playbook parses a server's output only with bs_server_json and
# stores what it derived from one only through bs_inert; both mark every string (wrap_var). 2.19+
# never templates data it did not read from the playbook or the inventory; the marks change nothing
# there (wrap_var only drops a trust it never had).

from __future__ import annotations

import json

from ansible.utils.unsafe_proxy import wrap_var

_LINE_MAX = 200


def _first_line(text):
    line = text.lstrip().split('\n', 1)[0].rstrip('\r')
    if not line:
        return '(nothing)'
    return line if len(line) <= _LINE_MAX else line[:_LINE_MAX] + '…'


def bs_server_json(text, count=1):
    """The `count` JSON documents (objects or null) a server printed one after another, as
    {'docs': [...], 'problem': ''}; when it printed anything else, {'docs': [], 'problem':
    'unparseable output: <the first line from where it stopped making sense>'}. Never raises.
    Every string in the result is marked unsafe."""
    text = str(text or '')
    decoder = json.JSONDecoder()
    docs = []
    pos = 0
    for _ in range(int(count)):
        start = len(text) - len(text[pos:].lstrip())
        try:
            doc, pos = decoder.raw_decode(text, start)
        except ValueError:
            doc = False
        if doc is not None and not isinstance(doc, dict):
            return wrap_var({'docs': [], 'problem': 'unparseable output: ' + _first_line(text[start:])})
        docs.append(doc)
    if text[pos:].strip():
        return wrap_var({'docs': [], 'problem': 'unparseable output: ' + _first_line(text[pos:])})
    return wrap_var({'docs': docs, 'problem': ''})


def bs_inert(value):
    """`value` with every string in it marked unsafe: never templated when read back."""
    return wrap_var(value)


class FilterModule:
    def filters(self):
        return {'bs_server_json': bs_server_json, 'bs_inert': bs_inert}
