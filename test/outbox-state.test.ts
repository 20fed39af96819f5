import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../src/outbox/index.js';
import { marker, markers } from './helpers/events.js';

const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'outbox-state-'));
  dirs.push(d);
  return d;
}

function openOutbox(dir: string, extra: Partial<Parameters<typeof Outbox.open>[0]> = {}): Outbox {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000, ...extra });
  open.push(ob);
  return ob;
}

function reopen(ob: Outbox, dir: string): Outbox {
  ob.close();
  open.splice(open.indexOf(ob), 1);
  return openOutbox(dir);
}

describe('outbox state', () => {
  it('writes the state row in the same commit as its event: both appear together after reopen', () => {
    const dir = tempDir();
    let ob = openOutbox(dir);
    ob.appendEvent(marker('raised'), { key: 'alarm/d/p/high', value: '{"ts":1}' });
    // Queued only: neither the event nor the row is visible before the commit.
    expect(ob.readState('alarm/').size).toBe(0);
    expect(ob.commit()).toBe(1);
    ob = reopen(ob, dir);
    expect(markers(ob.readEvents(0, 10))).toEqual(['raised']);
    expect(ob.readState('alarm/')).toEqual(new Map([['alarm/d/p/high', '{"ts":1}']]));

    ob.appendEvent(marker('cleared'), { key: 'alarm/d/p/high', value: null });
    ob.commit();
    ob = reopen(ob, dir);
    expect(markers(ob.readEvents(0, 10))).toEqual(['raised', 'cleared']);
    expect(ob.readState('alarm/').size).toBe(0);
  });

  it('loses both or neither when the commit fails', () => {
    const dir = tempDir();
    let fail = true;
    let ob = openOutbox(dir, {
      faultInjector: () => {
        if (fail) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      },
    });
    ob.appendEvent(marker('n1'), { key: 'alarm/d/p/high', value: 'x' });
    expect(ob.commit()).toBe(0);
    expect(ob.readState('').size).toBe(0);
    expect(ob.readEvents(0, 10)).toEqual([]);
    fail = false;
    ob.commit();
    expect(ob.readEvents(0, 10)).toHaveLength(1);
    expect(ob.readState('').get('alarm/d/p/high')).toBe('x');

    fail = true;
    ob.appendEvent(marker('n2'), { key: 'alarm/d/p/high', value: null });
    ob = reopen(ob, dir); // close commits, fails, and the queued pair is lost as a pair
    expect(markers(ob.readEvents(0, 10))).toEqual(['n1']);
    expect(ob.readState('').get('alarm/d/p/high')).toBe('x');
  });

  it('keeps the latest value per key, reads by prefix, and writes state even when its event left a full memory queue', () => {
    const dir = tempDir();
    let fail = true;
    const ob = openOutbox(dir, {
      faultInjector: () => {
        if (fail) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      },
    });
    ob.appendEvent(marker('n0'), { key: 'alarm/d/p/low', value: 'first' });
    ob.appendEvent(marker('n1'), { key: 'alarm/d/p/low', value: 'second' });
    ob.appendEvent(marker('n2'), { key: 'other/x', value: 'y' });
    // More events than the memory queue holds while storage refuses: the oldest go, their state stays.
    for (let i = 0; i < 10_000; i++) ob.appendEvent(marker('x'));
    fail = false;
    ob.commit();
    expect(ob.readState('alarm/')).toEqual(new Map([['alarm/d/p/low', 'second']]));
    expect(ob.readState('')).toEqual(new Map([['alarm/d/p/low', 'second'], ['other/x', 'y']]));
    expect(ob.stats().dropped.memoryQueueFull).toBe(3);
  });

  it('adds the table to an outbox created before it existed', () => {
    const dir = tempDir();
    let ob = openOutbox(dir);
    ob.close();
    open.splice(open.indexOf(ob), 1);
    const db = new Database(join(dir, 'outbox.db'));
    db.exec('DROP TABLE state');
    db.close();
    ob = openOutbox(dir);
    ob.appendEvent(marker('x'), { key: 'alarm/a/b/c', value: '1' });
    ob.commit();
    expect(ob.readState('alarm/').get('alarm/a/b/c')).toBe('1');
  });

  it('drains rows an older build stored as finished v1 JSON as typed events', () => {
    const dir = tempDir();
    const ob = openOutbox(dir);
    ob.appendEvent(marker('first'));
    ob.close();
    open.splice(open.indexOf(ob), 1);
    const db = new Database(join(dir, 'outbox.db'));
    const v1 = '{"v":1,"event":"alarm","g":"gw","state":"raised","device":"d","point":"p","alarm":"high","type":"high","severity":"major","value":5,"limit":4,"ts":9}';
    db.prepare('INSERT INTO event (seq, ts, kind, payload) VALUES (?, ?, ?, ?)').run(50, 1, 'alarm', v1);
    db.prepare('INSERT INTO event (seq, ts, kind, payload) VALUES (?, ?, ?, ?)').run(51, 1, 'events', '{"v":1,"event":"outbox-recreated","g":"gw","reason":"corrupt"}');
    db.close();
    const events = openOutbox(dir).readEvents(0, 10);
    expect(events.map((e) => e.event.kind)).toEqual(['outbox-recreated', 'alarm', 'outbox-recreated']);
    expect(events[1]!.event).toEqual({ kind: 'alarm', alarm: { state: 'raised', device: 'd', point: 'p', alarm: 'high', type: 'high', severity: 'major', value: 5, limit: 4, ts: 9 } });
  });

  it('rejects a state entry without a key', () => {
    const ob = openOutbox(tempDir());
    expect(() => ob.appendEvent(marker('x'), { key: '', value: 'x' })).toThrow(/non-empty/);
  });
});
