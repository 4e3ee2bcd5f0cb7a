// The heartbeat kinds are listed once (src/heartbeat/kinds.ts); what names them elsewhere must
// agree with that list: the hint bootstrap.ini's unknown `type` gets, the callback JSON Schema's
// enum of a result's type, and the section each kind parses. Adding a kind to one and not the
// others fails here.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/config.js';
import { BootstrapError } from '../../../src/errors.js';
import { heartbeatTypes, type HeartbeatType } from '../../../src/heartbeat/kinds.js';
import { root } from '../../helpers/cli.js';

const base = '[server]\nmodes = a\n';

/** One section each kind reads, the keys beside `type`. Typed by the registry: a kind missing here fails to compile. */
const sections: Record<HeartbeatType, string> = {
  haproxy: 'socket = /run/haproxy/admin.sock\n',
  http: 'url = http://127.0.0.1:8080/health\n',
  tcp: 'address = 127.0.0.1:7070\n',
  exec: 'command = true\n',
};

function hintOfUnknownType(): string | undefined {
  try {
    parseConfig(`${base}[heartbeat.h]\ntype = no-such-kind\n`, '/etc/bootstrap/bootstrap.ini');
  } catch (err) {
    assert.ok(err instanceof BootstrapError, String(err));
    assert.equal(err.message, "[heartbeat.h] type: 'no-such-kind' is not a heartbeat type");
    return err.hint;
  }
  assert.fail('an unknown type was accepted');
}

describe('heartbeat kinds: one list', () => {
  it('the registry has the kinds of the contract', () => {
    assert.deepEqual(heartbeatTypes, ['haproxy', 'http', 'tcp', 'exec']);
  });

  it('the hint for an unknown type names every kind of the registry, in its order', () => {
    const hint = hintOfUnknownType();
    assert.match(hint ?? '', /^one of /);
    assert.deepEqual(hint!.slice('one of '.length).split(', '), heartbeatTypes);
  });

  it("the callback JSON Schema's enum of a check result's type is the registry", () => {
    const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
    const checkup = schema.properties.heartbeat.oneOf.find((s: { type?: string }) => s.type === 'object');
    const enumOfType: string[] = checkup.properties.results.items.properties.type.enum;
    assert.deepEqual([...enumOfType].sort(), [...heartbeatTypes].sort());
  });

  it('each kind reads its own section into a spec of its type', () => {
    assert.deepEqual(Object.keys(sections).sort(), [...heartbeatTypes].sort());
    for (const type of heartbeatTypes) {
      const c = parseConfig(`${base}[heartbeat.h]\ntype = ${type}\ntimeout = 3\n${sections[type]}`, '/etc/bootstrap/bootstrap.ini');
      const spec = c.heartbeats.get('h');
      assert.equal(spec?.type, type);
      assert.deepEqual([spec.name, spec.timeoutMs], ['h', 3000]);
    }
  });
});
