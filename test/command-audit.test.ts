import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { commandEventJson, commandRecord } from '../src/commands/audit.js';
import type { AlarmCommand, WriteCommand } from '../src/commands/types.js';
import { decodeEvent, encodeEvent } from '../src/events.js';
import { eventJson, withSeq } from '../src/uplink/messages.js';
import { validateAny } from './helpers/payload-schema.js';

const schema = JSON.parse(readFileSync(new URL('../docs/commands.schema.json', import.meta.url), 'utf8'));
const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
ajv.addSchema(schema);
const def = (name: string) => ajv.getSchema(`urn:fieldgate:commands:v1#/definitions/${name}`)!;
const valid = (name: string, x: unknown) => {
  const v = def(name);
  const ok = v(x);
  return ok ? true : ajv.errorsText(v.errors);
};

const write: WriteCommand = { kind: 'write', id: 'op-1', device: 'pump1', point: 'sp', value: 3.2, expiresAt: 1_800_000_030_000, origin: 'mqtt', by: 'control-room' };
const ack: AlarmCommand = { kind: 'alarm', id: 'a-1', action: 'shelve', device: 'face', point: 'ch4', alarm: 'high', durationS: 600, origin: 'local', note: 'detector swap' };

describe('command audit events', () => {
  it('are stored and read back as the same typed record', () => {
    for (const r of [commandRecord('accepted', write), commandRecord('result', write, { id: 'op-1', status: 'done', value: 3.2, readBack: 3.2, ts: 5 }), commandRecord('duplicate', ack, { id: 'a-1', status: 'rejected', reason: 'x', ts: 6 })]) {
      const row = encodeEvent(r);
      expect(row.kind).toBe('command');
      expect(decodeEvent(row.kind, row.payload)).toEqual(r);
    }
  });

  it('a row that is not a command record stays readable as unreadable, never throws', () => {
    expect(decodeEvent('command', '{"phase":"accepted","command":{"id":1}}').kind).toBe('unreadable');
    expect(decodeEvent('command', '{"phase":"later","command":{}}').kind).toBe('unreadable');
    expect(decodeEvent('command', 'not json').kind).toBe('unreadable');
  });

  it('go out on the events topic in v1 JSON that both schemas accept', () => {
    const r = commandRecord('result', write, { id: 'op-1', status: 'failed', reason: 'read back 3.1', ts: 7 });
    const text = withSeq(eventJson('gw', r), 42, '3f9a0c41d27be856');
    expect(text).toBe(`{"seq":42,"ep":"3f9a0c41d27be856",${commandEventJson('gw', r).slice(1)}`);
    const msg = JSON.parse(text);
    expect(valid('commandEvent', msg)).toBe(true);
    expect(validateAny(msg)).toBe(true);
    expect(valid('commandEvent', JSON.parse(withSeq(eventJson('gw', commandRecord('accepted', ack)), 43, '3f9a0c41d27be856')))).toBe(true);
  });

  it('the schema takes the documented commands and refuses what the parser refuses', () => {
    expect(valid('writeCommand', { id: 'op-1', device: 'pump1', point: 'sp', value: 3.2, ttlS: 30 })).toBe(true);
    expect(valid('writeCommand', { id: 'op-1', device: 'pump1', point: 'sp', value: 3.2 })).not.toBe(true);
    expect(valid('writeCommand', { id: 'op-1', device: 'pump1', point: 'sp', value: 3.2, ttlS: 30, expireAt: 1 })).not.toBe(true);
    expect(valid('alarmCommand', { id: 'a', action: 'shelve', device: 'f', point: 'c', alarm: 'h', durationS: 60 })).toBe(true);
    expect(valid('alarmCommand', { id: 'a', action: 'shelve', device: 'f', point: 'c', alarm: 'h' })).not.toBe(true);
    expect(valid('alarmCommand', { id: 'a', action: 'ack', device: 'f', point: 'c', alarm: 'h', durationS: 60 })).not.toBe(true);
    expect(valid('commandResult', { id: 'a', status: 'expired', reason: 'expired 3 s ago', ts: 1 })).toBe(true);
  });
});

describe('remote configuration messages against the schema', () => {
  it('the envelope push makes, the report and the config event are valid', async () => {
    const { generateKeyPairSync, sign } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ed25519');
    const config = 'gateway: { id: g }\n';
    expect(valid('configDesired', { v: 1, version: 5, config, sig: sign(null, Buffer.from(config), privateKey).toString('base64') })).toBe(true);
    expect(valid('configDesired', { v: 1, version: 5, config })).not.toBe(true);
    const report = { version: 5, state: 'rejected', reason: 'the file is invalid (1 error)', errors: [{ path: 'devices[0].unit', message: 'line 4: must be 1-247' }], ts: 9 };
    expect(valid('configReported', report)).toBe(true);
    const event = JSON.parse(withSeq(eventJson('gw', { kind: 'config', ...report } as never), 12, '3f9a0c41d27be856'));
    expect(valid('configEvent', event)).toBe(true);
    expect(validateAny(event)).toBe(true);
    expect(decodeEvent('config', encodeEvent({ kind: 'config', ...report } as never).payload)).toEqual({ kind: 'config', ...report });
  });
});
