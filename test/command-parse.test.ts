import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_COMMAND_BYTES, parseCommand } from '../src/uplink/profiles/fieldgate/commands.js';
import { fieldgateProfile } from '../src/uplink/profiles/fieldgate/index.js';

const NOW = 1_800_000_000_000;
const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const write = (o: Record<string, unknown>) => parseCommand('write', json({ id: 'c-1', device: 'pump1', point: 'sp', value: 3.2, ttlS: 30, ...o }), NOW);
const alarm = (o: Record<string, unknown>) => parseCommand('alarm', json({ id: 'a-1', action: 'ack', device: 'face', point: 'ch4', alarm: 'high', ...o }), NOW);

describe('fieldgate cmd/write parsing', () => {
  it('reads a write with ttlS or expiresAt', () => {
    expect(write({})).toEqual({ kind: 'command', command: { kind: 'write', id: 'c-1', device: 'pump1', point: 'sp', value: 3.2, expiresAt: NOW + 30_000, origin: 'mqtt' } });
    expect(write({ ttlS: undefined, expiresAt: NOW + 5 })).toMatchObject({ command: { expiresAt: NOW + 5 } });
    expect(write({ value: true, by: 'op-7' })).toMatchObject({ command: { value: true, by: 'op-7' } });
  });

  it('bounds the expiry by what is left of the MQTT 5 message expiry (time spent queued at the broker)', () => {
    const body = json({ id: 'c-1', device: 'pump1', point: 'sp', value: 3.2, ttlS: 30 });
    expect(parseCommand('write', body, NOW, 5)).toMatchObject({ command: { expiresAt: NOW + 5000 } });
    expect(parseCommand('write', body, NOW, 300)).toMatchObject({ command: { expiresAt: NOW + 30_000 } });
    expect(parseCommand('alarm', json({ id: 'a', action: 'ack', device: 'f', point: 'c', alarm: 'h' }), NOW, 7)).toMatchObject({ command: { expiresAt: NOW + 7000 } });
  });

  it('refuses a write without an expiry, naming why, and keeps the id so it can be answered', () => {
    expect(write({ ttlS: undefined })).toEqual({ kind: 'invalid', id: 'c-1', reason: expect.stringMatching(/no expiry.*never run/) });
    expect(write({ expiresAt: NOW })).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/not both/) });
  });

  it.each([
    [{ device: 'pump 1' }, /"device" must be a name/],
    [{ point: 7 }, /"point" must be a name/],
    [{ value: undefined }, /"value" is missing/],
    [{ value: null }, /"value" must be a number, true\/false or a string, got null/],
    [{ value: [1] }, /"value" must be/],
    [{ value: 'x'.repeat(300) }, /at most 256/],
    [{ ttlS: 0 }, /"ttlS" must be a number of seconds above 0/],
    [{ ttlS: '30' }, /"ttlS" must be/],
    [{ ttlS: undefined, expiresAt: 1.5 }, /"expiresAt" must be a time in ms/],
    [{ expireAt: 5 }, /unknown key "expireAt"/],
    [{ by: 'a\nb' }, /"by" must be text/],
  ])('refuses %j', (over, why) => {
    const r = write(over);
    expect(r.kind).toBe('invalid');
    expect((r as { reason: string }).reason).toMatch(why);
  });

  it('refuses what is not a command object, with no id to answer', () => {
    expect(parseCommand('write', Buffer.from('{'), NOW)).toEqual({ kind: 'invalid', reason: 'not JSON' });
    expect(parseCommand('write', Buffer.from('[1]'), NOW)).toEqual({ kind: 'invalid', reason: 'not a JSON object' });
    expect(parseCommand('write', json({ id: '' }), NOW)).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/"id" must be/) });
    expect(parseCommand('write', json({ id: 'a b' }), NOW)).not.toHaveProperty('id');
    expect(parseCommand('write', Buffer.alloc(MAX_COMMAND_BYTES + 1, 0x20), NOW)).toMatchObject({ reason: expect.stringMatching(/at most 4096/) });
  });
});

describe('fieldgate cmd/alarm parsing', () => {
  it('reads ack, shelve and unshelve', () => {
    expect(alarm({ by: 'shift-lead', note: 'crew out' })).toEqual({
      kind: 'command',
      command: { kind: 'alarm', id: 'a-1', action: 'ack', device: 'face', point: 'ch4', alarm: 'high', origin: 'mqtt', by: 'shift-lead', note: 'crew out' },
    });
    expect(alarm({ action: 'shelve', durationS: 3600 })).toMatchObject({ command: { action: 'shelve', durationS: 3600 } });
    expect(alarm({ action: 'unshelve', ttlS: 10 })).toMatchObject({ command: { action: 'unshelve', expiresAt: NOW + 10_000 } });
  });

  it('refuses a shelve without a duration, a duration on ack, an unknown action', () => {
    expect(alarm({ action: 'shelve' })).toMatchObject({ kind: 'invalid', id: 'a-1', reason: 'shelve needs "durationS"' });
    expect(alarm({ durationS: 5 })).toMatchObject({ kind: 'invalid', reason: '"durationS" is only for shelve' });
    expect(alarm({ action: 'silence' })).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/"action" must be one of ack, shelve, unshelve/) });
    expect(alarm({ alarm: '' })).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/"alarm" must be a name/) });
  });
});

describe('the command parser under fuzzing', () => {
  const check = (which: 'write' | 'alarm', bytes: Buffer) => {
    const r = parseCommand(which, bytes, NOW);
    if (r.kind === 'invalid') return typeof r.reason === 'string' && r.reason.length > 0 && r.reason.length < 400;
    if (r.kind !== 'command') return false;
    const c = r.command;
    const okNames = [c.device, c.point].every((n) => /^[A-Za-z0-9_-]{1,128}$/.test(n)) && /^[\x21-\x7e]{1,128}$/.test(c.id);
    if (c.kind === 'write') return okNames && Number.isFinite(c.expiresAt) && ['number', 'boolean', 'string'].includes(typeof c.value);
    return okNames && ['ack', 'shelve', 'unshelve'].includes(c.action) && (c.action !== 'shelve' || typeof c.durationS === 'number');
  };

  it('never throws and yields only well-formed commands from random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('write' as const, 'alarm' as const), (b, which) => check(which, Buffer.from(b))), { numRuns: 2000 });
  });

  it('never throws on random JSON objects near the command shape', () => {
    const anyValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
    const key = fc.constantFrom('id', 'device', 'point', 'value', 'expiresAt', 'ttlS', 'by', 'action', 'alarm', 'durationS', 'note', '__proto__', 'constructor', 'x');
    const obj = fc.dictionary(key, anyValue, { maxKeys: 9 });
    fc.assert(fc.property(obj, fc.constantFrom('write' as const, 'alarm' as const), (o, which) => check(which, json(o))), { numRuns: 3000 });
  });
});

describe('the fieldgate profile and commands', () => {
  it('subscribes cmd/write only with a writable point and cmd/alarm only with alarms, and routes by topic', () => {
    const both = fieldgateProfile({ gatewayId: 'gw', topicPrefix: 'water', format: 'compact', now: () => NOW });
    expect(both.subscriptions()).toEqual([{ filter: 'water/gw/cmd/write', qos: 1 }, { filter: 'water/gw/cmd/alarm', qos: 1 }]);
    const none = fieldgateProfile({ gatewayId: 'gw', topicPrefix: 'water', format: 'compact', commands: { write: false, alarm: true } });
    expect(none.subscriptions()).toEqual([{ filter: 'water/gw/cmd/alarm', qos: 1 }]);
    expect(none.inbound('water/gw/cmd/write', json({ id: 'x' }))).toBeNull();
    expect(both.inbound('water/gw/cmd/write', json({ id: 'c', device: 'd', point: 'p', value: 1, ttlS: 1 }))).toMatchObject({ kind: 'command', command: { expiresAt: NOW + 1000 } });
    expect(both.inbound('water/gw/cmd/other', json({}))).toBeNull();
    expect(both.commandResult({ id: 'c', status: 'done', ts: 5 })).toEqual({ topic: 'water/gw/cmd/result', payload: '{"id":"c","status":"done","ts":5}', qos: 1, retain: false });
  });
});
