// Unit tests for src/heartbeat/haproxy.ts's parseStat and judge: reading haproxy's `show stat`
// CSV and the verdict on it. (test/heartbeat.test.ts runs a real haproxy; these pin the edges.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judge, parseStat } from '../../../src/heartbeat/haproxy.js';

// The real header starts like this and ends with a comma (so does every row).
const header = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,';
const columns = header.slice(2).split(',');

/** A row with the named fields set and the rest empty. */
function row(fields: Record<string, string>): string {
  return columns.map((c) => fields[c] ?? '').join(',');
}
const server = (px: string, sv: string, status: string, act = '1', check = 'L7OK') => row({ pxname: px, svname: sv, status, act, bck: act === '1' ? '0' : '1', check_status: check });
const backend = (px: string, status: string) => row({ pxname: px, svname: 'BACKEND', status, act: '1', bck: '0' });
const frontend = (px: string) => row({ pxname: px, svname: 'FRONTEND', status: 'OPEN' });
const csv = (...rows: string[]) => [header, ...rows, ''].join('\n');

describe('parseStat', () => {
  it('reads fields by the header, in any column order', () => {
    const text = '# status,act,bck,svname,pxname\nUP,1,0,web1,web\nDOWN,0,1,BACKEND,web\n';
    assert.deepEqual(parseStat(text), [
      { pxname: 'web', svname: 'web1', status: 'UP', check_status: '', act: '1', bck: '0' },
      { pxname: 'web', svname: 'BACKEND', status: 'DOWN', check_status: '', act: '0', bck: '1' },
    ]);
  });

  it('takes CRLF line ends and blank lines', () => {
    const text = csv(server('web', 'web1', 'UP')).replace(/\n/g, '\r\n') + '\r\n\r\n';
    assert.deepEqual(parseStat(text).map((r) => [r.pxname, r.svname, r.status, r.check_status]), [['web', 'web1', 'UP', 'L7OK']]);
  });

  it('refuses text without a header', () => {
    assert.throws(() => parseStat('web,web1,UP\n'), /'show stat' has no CSV header/);
    assert.throws(() => parseStat(''), /no CSV header/);
  });

  it('refuses a header without a column it needs (check_status may be absent)', () => {
    assert.throws(() => parseStat('# pxname,svname,status,bck\n'), /has no 'act' column/);
    assert.equal(parseStat('# pxname,svname,status,act,bck\nweb,web1,UP,1,0\n')[0]!.check_status, '');
  });

  it('refuses a truncated row', () => {
    assert.throws(() => parseStat(`${header}\nweb,web1,0,0\n`), /'show stat' row is truncated: "web,web1,0,0"/);
  });

  it('takes a row one field short of the header (no trailing comma)', () => {
    const line = server('web', 'web1', 'UP');
    assert.equal(parseStat(`${header}\n${line.slice(0, -1)}\n`).length, 1);
  });
});

describe('judge', () => {
  it('is healthy when every backend with servers is UP with an active server UP', () => {
    const v = judge(csv(frontend('fe'), server('web', 'web1', 'UP'), server('web', 'web2', 'UP'), backend('web', 'UP'), backend('stats', 'UP')), undefined);
    assert.deepEqual(v, { healthy: true, detail: 'backend web: 2/2 servers UP' });
  });

  it('names a down server of a healthy backend without failing it', () => {
    const v = judge(csv(server('web', 'web1', 'UP'), server('web', 'web2', 'DOWN', '1', 'L4CON'), backend('web', 'UP')), undefined);
    assert.deepEqual(v, { healthy: true, detail: 'backend web: 1/2 servers UP; web/web2 DOWN (L4CON)' });
  });

  it('is unhealthy when only a backup server is UP', () => {
    const v = judge(csv(server('web', 'web1', 'DOWN'), server('web', 'spare', 'UP', '0'), backend('web', 'UP')), undefined);
    assert.equal(v.healthy, false);
    assert.equal(v.detail, 'backend web: 1/2 servers UP; web/web1 DOWN (L7OK)');
  });

  it('says when the backend itself is down, and strips the in-progress mark of a check', () => {
    const v = judge(csv(server('web', 'web1', 'DOWN', '1', '* L4CON'), backend('web', 'DOWN')), undefined);
    assert.deepEqual(v, { healthy: false, detail: 'backend web: 0/1 servers UP, backend DOWN; web/web1 DOWN (L4CON)' });
  });

  it('counts "UP 1/3" (going down) as UP, and "DOWN 1/2" (going up), MAINT and NOLB as not', () => {
    const v = judge(csv(server('web', 'a', 'UP 1/3'), server('web', 'b', 'DOWN 1/2'), server('web', 'c', 'MAINT', '1', ''), server('web', 'd', 'NOLB'), backend('web', 'UP')), undefined);
    assert.deepEqual(v, { healthy: true, detail: 'backend web: 1/4 servers UP; web/b DOWN 1/2 (L7OK); web/c MAINT; web/d NOLB (L7OK)' });
  });

  it('lists the unhealthy backends first', () => {
    const v = judge(csv(server('a', 'a1', 'UP'), backend('a', 'UP'), server('b', 'b1', 'DOWN', '1', 'L7STS'), backend('b', 'DOWN')), undefined);
    assert.deepEqual(v, { healthy: false, detail: 'backend b: 0/1 servers UP, backend DOWN; b/b1 DOWN (L7STS); backend a: 1/1 servers UP' });
  });

  it('checks only the wanted backends, and names a missing one', () => {
    const text = csv(server('a', 'a1', 'UP'), backend('a', 'UP'), server('b', 'b1', 'DOWN'), backend('b', 'DOWN'));
    assert.deepEqual(judge(text, ['a']), { healthy: true, detail: 'backend a: 1/1 servers UP' });
    assert.deepEqual(judge(text, ['a', 'nope']), { healthy: false, detail: 'backend nope: not found in haproxy; backend a: 1/1 servers UP' });
  });

  it('is unhealthy when no backend has servers', () => {
    assert.deepEqual(judge(csv(frontend('fe'), backend('stats', 'UP')), undefined), { healthy: false, detail: 'haproxy has no backend with servers' });
  });

  it('turns unreadable output into an unhealthy verdict, not a throw', () => {
    assert.deepEqual(judge('Unknown command.\n', undefined), { healthy: false, detail: `'show stat' has no CSV header: "Unknown command.\\n"` });
  });
});
