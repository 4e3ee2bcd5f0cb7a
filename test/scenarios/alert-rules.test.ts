// The shipped Prometheus alerting rules (etc/prometheus/bootstrap.rules.yml), checked by the real
// promtool (Debian's prometheus package): the file parses, and each alert fires exactly when
// docs/monitoring.md says — a server with no success for an hour, one that never succeeded, one disabled for
// more than a day, one whose metrics file went stale — and stays quiet otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { root } from '../helpers/cli.js';

const rules = join(root, 'etc/prometheus/bootstrap.rules.yml');

function promtool(args: string[], cwd: string) {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, `promtool could not run: ${r.error?.message}`);
  return r;
}

// Times below are seconds from the test's start (promtool's clock starts at 0). A series value
// `a+bxN` is a, a+b, … every interval (1m).
const unitTests = `
rule_files: [bootstrap.rules.yml]
evaluation_interval: 1m
tests:
  # A healthy server: a success every 15 min (the timestamp follows the clock).
  - interval: 1m
    input_series:
      - series: 'bootstrap_last_success_timestamp_seconds{instance="ok"}'
        values: '0+0x14 900+0x14 1800+0x14 2700+0x14 3600+0x14 4500+0x14'
      - series: 'bootstrap_disabled{instance="ok"}'
        values: '0x89'
      - series: 'bootstrap_disabled_since_timestamp_seconds{instance="ok"}'
        values: '0x89'
    alert_rule_test:
      - { eval_time: 85m, alertname: BootstrapNoSuccessForAnHour, exp_alerts: [] }
      - { eval_time: 85m, alertname: BootstrapDisabledForADay, exp_alerts: [] }
  # Last success at t=0, failing since: fires once past an hour and the 5 min "for".
  - interval: 1m
    input_series:
      - series: 'bootstrap_last_success_timestamp_seconds{instance="failing"}'
        values: '0x90'
      # Never succeeded: the metric is 0.
      - series: 'bootstrap_last_success_timestamp_seconds{instance="never"}'
        values: '0x90'
    alert_rule_test:
      - { eval_time: 62m, alertname: BootstrapNoSuccessForAnHour, exp_alerts: [] }
      - eval_time: 70m
        alertname: BootstrapNoSuccessForAnHour
        exp_alerts:
          - exp_labels: { severity: warning, instance: failing }
            exp_annotations:
              summary: "bootstrap on failing: no successful run for 1h 10m 0s"
              description: "Failed runs since: see bootstrap_failed_runs_since_success; on the server: bootstrap server.status --check, bootstrap runs.show last."
          - exp_labels: { severity: warning, instance: never }
            exp_annotations:
              summary: "bootstrap on never: no successful run for 1h 10m 0s"
              description: "Failed runs since: see bootstrap_failed_runs_since_success; on the server: bootstrap server.status --check, bootstrap runs.show last."
  # Disabled at t=0: quiet for a day, then fires; enabled again: quiet.
  - interval: 1h
    input_series:
      - series: 'bootstrap_disabled{instance="web-01"}'
        values: '1x25 0x3'
      - series: 'bootstrap_disabled_since_timestamp_seconds{instance="web-01"}'
        values: '0x25 0x3'
    alert_rule_test:
      - { eval_time: 23h, alertname: BootstrapDisabledForADay, exp_alerts: [] }
      - eval_time: 25h
        alertname: BootstrapDisabledForADay
        exp_alerts:
          - exp_labels: { severity: warning, instance: web-01 }
            exp_annotations:
              summary: "bootstrap on web-01 has been disabled for more than a day"
              description: "bootstrap server.status shows who disabled it and why; bootstrap server.enable allows runs again."
      - { eval_time: 27h, alertname: BootstrapDisabledForADay, exp_alerts: [] }
  # The metrics file stopped changing at t=0.
  - interval: 1m
    input_series:
      - series: 'node_textfile_mtime_seconds{instance="web-02",file="/var/lib/prometheus/node-exporter/bootstrap.prom"}'
        values: '0x90'
      - series: 'node_textfile_mtime_seconds{instance="web-02",file="/var/lib/prometheus/node-exporter/other.prom"}'
        values: '0x90'
    alert_rule_test:
      - { eval_time: 62m, alertname: BootstrapMetricsStale, exp_alerts: [] }
      - eval_time: 70m
        alertname: BootstrapMetricsStale
        exp_alerts:
          - exp_labels: { severity: warning, instance: web-02, file: /var/lib/prometheus/node-exporter/bootstrap.prom }
            exp_annotations:
              summary: "bootstrap on web-02 has not written its metrics for an hour (is bootstrap-refresh.timer running?)"
`;

describe('the shipped Prometheus alerting rules, by promtool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-rules-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(rules, join(dir, 'bootstrap.rules.yml'));

  it('promtool check rules accepts the file (3 rules)', () => {
    const r = promtool(['check', 'rules', 'bootstrap.rules.yml'], dir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 3 rules found/);
  });

  it('each alert fires when docs/monitoring.md says, and only then (promtool test rules)', () => {
    writeFileSync(join(dir, 'tests.yml'), unitTests);
    const r = promtool(['test', 'rules', 'tests.yml'], dir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });

  it('the alerts the README and docs/monitoring.md show are the shipped ones, word for word', () => {
    const shipped = readFileSync(rules, 'utf8');
    for (const page of ['README.md', 'docs/monitoring.md']) {
      const exprs = [...readFileSync(join(root, page), 'utf8').matchAll(/^\s*(?:- )?expr: (.+)$/gm)].map((m) => m[1]!.trim());
      assert.ok(exprs.length >= 2, `${page} shows the alert rules`);
      for (const e of exprs) assert.ok(shipped.includes(`expr: ${e}`), `${page}: '${e}' is not in etc/prometheus/bootstrap.rules.yml`);
    }
  });

  it('a broken expectation fails (the test above can fail)', () => {
    writeFileSync(join(dir, 'wrong.yml'), unitTests.replace('- { eval_time: 62m, alertname: BootstrapNoSuccessForAnHour, exp_alerts: [] }', '- { eval_time: 30m, alertname: BootstrapNoSuccessForAnHour, exp_alerts: [ { exp_labels: { instance: failing, severity: warning } } ] }'));
    const r = promtool(['test', 'rules', 'wrong.yml'], dir);
    assert.notEqual(r.status, 0, 'promtool must reject an alert that does not fire');
  });
});
