# Filters of rollout.yml's Report play: the report's JSON document (bs_report) and the same as one
# self-contained HTML page (bs_report_html): no script, no external asset, readable offline.
#
# Choice: a filter, not a Jinja template with autoescape. Every value a server printed (a step's
# name, a failure's message, a version) is untrusted data; here each one goes through _esc, which
# escapes HTML and also Jinja's markers (`{` `}` as character references: the page shows them as
# printed, and nothing that templates the file again could run them). A template would escape only
# where autoescape is on, and the timeline's arithmetic is plain Python here, tested without
# Ansible. The page also forbids every script and external load itself (Content-Security-Policy),
# so an escaping slip could not run anything. Both filters return strings marked unsafe (wrap_var):
# stored as a fact, they are never templated again (see bootstrap_fleet.py).

from __future__ import annotations

import html
from datetime import datetime, timezone

try:
    from ansible.utils.unsafe_proxy import wrap_var
except ImportError:  # the unit test may run the page's code without Ansible
    def wrap_var(value):
        return value

# Known statuses in the order the summary shows them, with their colours; any other status (a
# newer playbook's) is shown too, after these, in grey.
_COLOURS = {
    'success': '#2e7d32', 'skipped': '#8d99ae', 'rebooting': '#1565c0', 'busy': '#ef6c00',
    'failed': '#c62828', 'unreachable': '#6a1b9a', 'backed out': '#b8860b', 'backout failed': '#7f0000',
    'not run': '#bdbdbd',
}
_OTHER = '#607d8b'
# What counts as a host that did not make it (the page's red banner); anything unknown does too.
_GOOD = ('success', 'skipped')
# A host that ran counts against the failure budget unless it ended one of these (a backout's
# statuses replace a success); an unknown status counts, as the budget would rather stop.
_NOT_FAILED = _GOOD + ('backed out', 'backout failed')


def _plain(value):
    """Plain dicts, lists and strs (2.19 hands filters lazy containers; unsafe strs stay strs)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


def _esc(value):
    """`value` as HTML text: markup and Jinja's markers inert, shown as printed."""
    text = '' if value is None else str(value)
    return html.escape(text, quote=True).replace('{', '&#123;').replace('}', '&#125;')


def _time(text):
    """An ISO 8601 UTC time ('…Z', as the agent and the playbook write them) as a datetime, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text[:-1] + '+00:00' if text.endswith('Z') else text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _secrets(pre_all):
    return sorted({k for p in (pre_all or {}).values() for k in (p or {}).get('secrets') or []})


def _before(pre, wanted):
    if not pre or not pre.get('ok'):
        return None
    settings = pre.get('settings') or {}
    return {'mode': pre.get('mode'), 'versions': pre.get('versions') or {},
            'settings': {k: settings.get(k) for k in wanted if k in settings}}


def _after(row, before, backout):
    """What the host has after the rollout: what its run reported (mode, versions, the settings it
    changed); a host put back, or a failed set whose values went back, has its before."""
    ran = row.get('after') or {}
    status = row.get('status')
    if before is None or status in ('backed out', 'skipped') or not row.get('ran'):
        return before if status in ('backed out', 'skipped') else None
    if not ran.get('mode') and not ran.get('versions'):
        return None
    kept = status == 'success' or backout == 'none'
    settings = dict(before['settings'])
    settings.update({k: v for k, v in (ran.get('settings_changed') or {}).items() if k in settings and kept})
    return {'mode': ran.get('mode'), 'versions': ran.get('versions') or {}, 'settings': settings}


def _row(row, pre, wanted, backout):
    row = dict(row)
    before = _before(pre, wanted)
    row['before'] = before
    row['after'] = _after(row, before, backout)
    for key in ('started_at', 'finished_at', 'steps', 'failure'):
        row.setdefault(key, None)
    return row


def _counts(rows):
    counts = {}
    for r in rows:
        counts[r.get('status', '?')] = counts.get(r.get('status', '?'), 0) + 1
    order = list(_COLOURS) + sorted(k for k in counts if k not in _COLOURS)
    return {k: counts[k] for k in order if k in counts}


def _batches(rows, times):
    """Each batch in the order it ran: its times (the controller's) and its hosts."""
    out = []
    for name, t in (times or {}).items():
        out.append({'name': name, 'started_at': (t or {}).get('started_at'), 'finished_at': (t or {}).get('finished_at'),
                    'hosts': [r['host'] for r in rows if r.get('batch') == name]})
    return out


def bs_report(rows, pre_all, batch_times, parameters, controller, summary):
    """The report's document: `summary` (rollout, command, stopped, stop_reason, budget_exceeded,
    started_at, finished_at) with the parameters (a secret setting's value masked), the controller,
    counts by status, the budget, the batches and each host's row with before -> after."""
    rows, pre_all, params = _plain(rows), _plain(pre_all) or {}, _plain(parameters) or {}
    settings = params.get('settings') or {}
    secrets = _secrets(pre_all)
    if isinstance(params.get('settings'), dict):
        params['settings'] = {k: '********' if k in secrets else v for k, v in settings.items()}
    wanted = sorted(settings) if params.get('command') == 'set' and isinstance(settings, dict) else []
    hosts = [_row(r, pre_all.get(r.get('host')), wanted, params.get('backout')) for r in rows]
    report = dict(_plain(summary))
    report.update({
        'parameters': params, 'controller': _plain(controller), 'counts': _counts(hosts),
        'budget': {'max_fail_percentage': params.get('max_fail_percentage'), 'exceeded': report.get('budget_exceeded', False),
                   'hosts': len(hosts), 'failed': sum(1 for h in hosts if h.get('ran') and h.get('status') not in _NOT_FAILED)},
        'batches': _batches(hosts, _plain(batch_times)), 'hosts': hosts,
    })
    return wrap_var(report)


# The page: plain HTML and CSS, no script; the policy forbids scripts, frames, forms and any load
# from elsewhere (its own inline style only).
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid #ddd}
.banner{padding:.6em .9em;border-radius:4px;font-weight:600;margin:.5em 0}
.banner.ok{background:#e8f5e9;color:#1b5e20}.banner.bad{background:#ffebee;color:#b71c1c}
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.5em 0}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.35em;vertical-align:-.1em}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right}.chg{font-weight:600;color:#0d47a1}
table.kv th{width:12em}.batch{margin:.6em 0 1em}.bhead{font-weight:600;margin-bottom:.2em}
.trow{display:flex;align-items:center;gap:.5em;height:1.5em}.tname{width:12em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.track{position:relative;flex:1;height:1em;background:#f3f3f3;border-radius:2px}
.window{position:absolute;top:0;bottom:0;background:#e3e8ef}
.bar{position:absolute;top:0;bottom:0;min-width:3px;border-radius:2px}.bar.norun{opacity:.55}
.tstat{width:9em;font-size:12px}.axis{display:flex;justify-content:space-between;font-size:12px;color:#666;margin-left:12.5em;margin-right:9.5em}
.failure{border-left:4px solid #c62828;padding:.3em .8em;margin:.6em 0;background:#fff8f8}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px}
"""


def _colour(status):
    return _COLOURS.get(status, _OTHER)


def _or_dash(v):
    return '—' if v is None else v


def _hms(t):
    return t.strftime('%H:%M:%S') if t else '—'


def _span(a, b):
    return '%.1f s' % (b - a).total_seconds() if a and b else '—'


def _value(v):
    import json
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _summary(r):
    rows = r.get('hosts') or []
    bad = [h for h in rows if h.get('status') not in _GOOD]
    if r.get('stopped'):
        banner = 'bad', 'Stopped: ' + (r.get('stop_reason') or 'no reason given')
    elif bad:
        banner = 'bad', 'Completed: %d of %d hosts did not succeed' % (len(bad), len(rows))
    else:
        banner = 'ok', 'Completed: every host succeeded or was already at the target'
    counts = ''.join('<li class="count" data-status="%s"><span class="swatch" style="background:%s"></span>%s: <b>%d</b></li>'
                     % (_esc(k), _colour(k), _esc(k), n) for k, n in (r.get('counts') or {}).items())
    budget = r.get('budget') or {}
    c = r.get('controller') or {}
    started, finished = _time(r.get('started_at')), _time(r.get('finished_at'))
    facts = [('Stopped', 'yes' if r.get('stopped') else 'no'), ('Why', r.get('stop_reason') or '—'),
             ('Failure budget', 'max_fail_percentage %s%% of %s hosts; %s failed; exceeded: %s'
              % (_or_dash(budget.get('max_fail_percentage')), budget.get('hosts'), budget.get('failed'), 'yes' if budget.get('exceeded') else 'no')),
             ('Started', r.get('started_at') or '—'), ('Finished', r.get('finished_at') or '—'), ('Took', _span(started, finished)),
             ('Controller', '%s%s@%s, ansible-core %s' % (c.get('user'), ' (sudo by %s)' % c['sudo_user'] if c.get('sudo_user') else '', c.get('host'), c.get('ansible_core')))]
    params = [(k, _value(v)) for k, v in (r.get('parameters') or {}).items() if v is not None]
    kv = lambda pairs, id_: '<table class="kv" id="%s">%s</table>' % (id_, ''.join('<tr><th>%s</th><td>%s</td></tr>' % (_esc(k), _esc(v)) for k, v in pairs))
    return ('<section id="summary"><h1>Rollout %s: %s</h1><div class="banner %s" id="verdict">%s</div><ul class="counts" id="counts">%s</ul>%s'
            '<h2>Parameters</h2>%s</section>') % (_esc(r.get('rollout')), _esc(r.get('command')), banner[0], _esc(banner[1]), counts,
                                                  kv(facts, 'facts'), kv(params, 'parameters'))


def _extent(r):
    """The timeline's first and last moments: of the batches (the controller's clock) and the runs
    and backouts (each server's clock, which NTP keeps close)."""
    moments = [_time(b.get(k)) for b in r.get('batches') or [] for k in ('started_at', 'finished_at')]
    moments += [_time(h.get(p + k)) for h in r.get('hosts') or [] for p in ('', 'backout_') for k in ('started_at', 'finished_at')]
    moments = [t for t in moments if t]
    return (min(moments), max(moments)) if moments else (None, None)


def _pos(t, t0, total):
    return 0.0 if not t else max(0.0, min(100.0, (t - t0).total_seconds() * 100.0 / total))


def _bar(h, times, b_start, window, t0, total):
    """One host's bar: from its run's start to its end (`times`: the keys of its row that hold
    them); a host that did not run is a mark at its batch's start."""
    s, e = _time(h.get(times[0])), _time(h.get(times[1]))
    status = h.get('status')
    left = _pos(s or b_start, t0, total)
    width = max(0.0, _pos(e, t0, total) - left) if s and e else 0.0
    tip = '%s: %s, %s – %s' % (h.get('host'), status, h.get(times[0]) or 'no run', h.get(times[1]) or '')
    return ('<div class="trow" data-host="%s"><span class="tname">%s</span><div class="track">%s<div class="bar%s" style="left:%.3f%%;width:%.3f%%;background:%s" title="%s"></div></div>'
            '<span class="tstat">%s · %s</span></div>') % (_esc(h.get('host')), _esc(h.get('host')), window, '' if s else ' norun', left, width,
                                                         _colour(status), _esc(tip), _esc(status), _span(s, e))


def _block(name, hosts, times, bs, be, t0, t1, total):
    window = '<div class="window" style="left:%.3f%%;width:%.3f%%"></div>' % (_pos(bs, t0, total), max(0.0, _pos(be or t1, t0, total) - _pos(bs, t0, total)))
    bars = ''.join(_bar(h, times, bs, window, t0, total) for h in hosts)
    return ('<div class="batch" data-batch="%s"><div class="bhead">%s · %s – %s (%s)</div>%s</div>'
            % (_esc(name), _esc(name), _hms(bs), _hms(be), _span(bs, be), bars))


def _timeline(r):
    t0, t1 = _extent(r)
    if not t0:
        return '<section id="timeline"><h2>Timeline</h2><p>Nothing ran.</p></section>'
    total = max((t1 - t0).total_seconds(), 0.001)
    rows = {h.get('host'): h for h in r.get('hosts') or []}
    out = [_block(b.get('name'), [rows[h] for h in b.get('hosts') or [] if h in rows], ('started_at', 'finished_at'),
                  _time(b.get('started_at')), _time(b.get('finished_at')), t0, t1, total) for b in r.get('batches') or []]
    # A fleet backout: the hosts put back, after the batches (the times of their backout runs).
    backed = [h for h in r.get('hosts') or [] if _time(h.get('backout_started_at'))]
    if backed:
        starts = [_time(h.get('backout_started_at')) for h in backed]
        ends = [t for t in (_time(h.get('backout_finished_at')) for h in backed) if t]
        out.append(_block('backout', backed, ('backout_started_at', 'backout_finished_at'), min(starts), max(ends) if ends else None, t0, t1, total))
    axis = '<div class="axis"><span>%s</span><span>%s</span></div>' % (_hms(t0), _hms(t1))
    return '<section id="timeline"><h2>Timeline (UTC)</h2>%s%s%s</section>' % (axis, ''.join(out), axis)


def _change(before, after):
    """`before → after` as HTML, or the one value when it did not change (— when unknown)."""
    if before == after:
        return _esc('—' if before is None else _value(before))
    return '%s → <span class="chg">%s</span>' % (_esc('—' if before is None else _value(before)), _esc('—' if after is None else _value(after)))


def _changes(before, after, key):
    b, a = (before or {}).get(key) or {}, (after or {}).get(key) or {}
    if before is None and after is None:
        return '—'
    return '<br>'.join('%s %s' % (_esc(k), _change(b.get(k), a.get(k) if after is not None else b.get(k))) for k in sorted(set(b) | set(a))) or '—'


def _steps(steps):
    if not steps:
        return '—'
    return _esc(' / '.join(str(steps.get(k, 0)) for k in ('changed', 'unchanged', 'skipped', 'failed')))


def _table(r):
    head = ('host', 'batch', 'status', 'exit', 'seconds', 'steps changed / unchanged / skipped / failed', 'mode', 'versions', 'settings', 'started', 'finished', 'run id')
    body = []
    for h in r.get('hosts') or []:
        before, after = h.get('before'), h.get('after')
        mode = '—' if before is None and after is None else _change((before or {}).get('mode'), (after or before or {}).get('mode'))
        cells = [_esc(h.get('host')), _esc(h.get('batch') or '—'),
                 '<span class="swatch" style="background:%s"></span>%s' % (_colour(h.get('status')), _esc(h.get('status'))),
                 _esc('—' if h.get('exit_code') is None else h.get('exit_code')), _esc('—' if h.get('duration_s') is None else h.get('duration_s')),
                 _steps(h.get('steps')), mode, _changes(before, after, 'versions'), _changes(before, after, 'settings'),
                 _esc(h.get('started_at') or '—'), _esc(h.get('finished_at') or '—'), _esc(h.get('run_id') or '—')]
        body.append('<tr class="host" data-host="%s" data-status="%s">%s</tr>' % (_esc(h.get('host')), _esc(h.get('status')), ''.join('<td>%s</td>' % c for c in cells)))
    return '<section><h2>Hosts: before → after</h2><table id="hosts"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></section>' % (
        ''.join('<th>%s</th>' % _esc(c) for c in head), ''.join(body))


def _failures(r):
    out = []
    for h in r.get('hosts') or []:
        f = h.get('failure') or {}
        where = [(k, f.get(k)) for k in ('phase', 'step', 'message') if f.get(k) is not None] or [('where', h.get('failed_at'))]
        where += [(k, h.get(k)) for k in ('backout_failed_at',) if h.get(k)]
        if h.get('status') in _GOOD or not any(v for _, v in where):
            continue
        out.append('<div class="failure" data-host="%s"><b>%s</b> (%s, %s)<table class="kv">%s</table></div>' % (
            _esc(h.get('host')), _esc(h.get('host')), _esc(h.get('status')), _esc(h.get('batch') or '—'),
            ''.join('<tr><th>%s</th><td><pre>%s</pre></td></tr>' % (_esc(k), _esc(v)) for k, v in where)))
    return '<section id="failures"><h2>Failures</h2>%s</section>' % (''.join(out) or '<p>None.</p>')


def bs_report_html(report):
    """The report (bs_report's document) as one HTML page, a str marked unsafe."""
    r = _plain(report)
    return wrap_var('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                    '<meta http-equiv="Content-Security-Policy" content="%s"><meta name="viewport" content="width=device-width">'
                    '<title>Rollout %s</title><style>%s</style></head>\n<body>\n%s\n%s\n%s\n%s\n</body></html>\n'
                    % (_CSP, _esc(r.get('rollout')), _STYLE, _summary(r), _timeline(r), _table(r), _failures(r)))


class FilterModule:
    def filters(self):
        return {'bs_report': bs_report, 'bs_report_html': bs_report_html}
