import { alarmEventJson } from '../src/uplink/messages.js';
import type { StoredEvent } from '../src/events.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { Outbox } from '../src/outbox/index.js';
import {
  ALARM_STATE_PREFIX,
  Processor,
  aggregatePoints,
  alarmStateEntry,
  type ProcessResult,
} from '../src/processing/index.js';

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/** The tunnel example of docs/processing.md: methane at the face, three high alarms with ids. */
const TUNNEL = `
gateway: { id: tunnel-gw }
buses:
  - { id: gas, transport: line, port: /dev/ttyUSB0 }
devices:
  - id: face
    bus: gas
    parse: { kv: {} }
    points:
      - id: ch4
        field: CH4
        unit: "%vol"
        deadband: 0.05
        alarms:
          - { id: ch4-alarm, type: high, limit: 0.5, hysteresis: 0.05, severity: warning, message: more ventilation }
          - { id: ch4-stop, type: high, limit: 1.0, hysteresis: 0.05, severity: major, message: stop drilling }
          - { id: ch4-evacuate, type: high, limit: 1.5, hysteresis: 0.05, severity: critical, message: "evacuate, cut power" }
          - { type: stale, afterS: 10, severity: major }
      - { id: temp, field: T }
`;

const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config() {
  const { config: c, issues } = parseConfig(TUNNEL, 'tunnel.yaml');
  expect(issues).toEqual([]);
  return c!;
}

/** A stored alarm as the v1 profile publishes it (without its seq). */
const v1 = (e: StoredEvent) => JSON.parse(e.event.kind === 'alarm' ? alarmEventJson('tunnel-gw', e.event.alarm) : '{}') as Record<string, unknown>;

/** The gateway's call sequence from the Processor's doc comment. */
function emitter(outbox: Outbox) {
  return ({ samples, alarms }: ProcessResult) => {
    for (const a of alarms) outbox.appendEvent({ kind: 'alarm', alarm: a }, alarmStateEntry(a));
    outbox.append(samples);
  };
}

const ch4 = (sec: number, value: number) => ({ device: 'face', point: 'ch4', ts: T0 + sec * 1000, value, quality: 'good' as const });

describe('alarm state across a restart', () => {
  it('does not raise an active alarm again and emits its clear later', () => {
    const dir = tempDir();
    const cfg = config();
    let mono = 0;
    let outbox = openOutbox(dir);
    let processor = new Processor(cfg.devices, { restored: outbox.readState(ALARM_STATE_PREFIX), monotonic: () => mono });
    let emit = emitter(outbox);
    emit(processor.process([ch4(0, 0.2), ch4(1, 0.7), ch4(2, 1.1)]));
    outbox.commit();
    const raised = outbox.readEvents(0, 10).map(v1);
    expect(raised.map((e) => [e.alarm, e.state])).toEqual([['ch4-alarm', 'raised'], ['ch4-stop', 'raised']]);
    expect(raised[1]).toEqual({
      v: 1, event: 'alarm', g: 'tunnel-gw', state: 'raised', device: 'face', point: 'ch4', alarm: 'ch4-stop', type: 'high',
      severity: 'major', value: 1.1, limit: 1, ts: T0 + 2000, message: 'stop drilling',
    });

    // Power cut and restart: the active alarms come back from the outbox.
    outbox.close();
    open.splice(open.indexOf(outbox), 1);
    outbox = openOutbox(dir);
    mono = 0;
    const restored = outbox.readState(ALARM_STATE_PREFIX);
    expect([...restored.keys()].sort()).toEqual(['alarm/face/ch4/ch4-alarm', 'alarm/face/ch4/ch4-stop']);
    processor = new Processor(cfg.devices, { restored, monotonic: () => mono });
    emit = emitter(outbox);
    expect(processor.activeAlarms().map((a) => a.alarm)).toEqual(['ch4-alarm', 'ch4-stop']);

    const still = processor.process([ch4(100, 1.2)]);
    expect(still.alarms).toEqual([]); // still above both limits: nothing new
    emit(still);
    const cleared = processor.process([ch4(101, 0.9), ch4(102, 0.3)]);
    expect(cleared.alarms.map((a) => [a.alarm, a.state, a.ts - T0])).toEqual([['ch4-stop', 'cleared', 101_000], ['ch4-alarm', 'cleared', 102_000]]);
    emit(cleared);
    outbox.commit();
    // Nobody acknowledged them: returned-unacknowledged, kept until an acknowledgement (ISA-18.2).
    expect([...outbox.readState(ALARM_STATE_PREFIX).values()].map((v) => JSON.parse(v).state)).toEqual(['returned-unacknowledged', 'returned-unacknowledged']);
    for (const id of ['ch4-alarm', 'ch4-stop']) {
      const r = processor.acknowledge('face', 'ch4', id, { ts: T0 + 103_000 });
      if (!r.ok) throw new Error(r.reason);
      emit({ samples: [], alarms: r.events });
    }
    outbox.commit();
    expect(outbox.readState(ALARM_STATE_PREFIX).size).toBe(0);
    expect(outbox.readEvents(0, 10).map((e) => v1(e).state)).toEqual(['raised', 'raised', 'cleared', 'cleared', 'acknowledged', 'acknowledged']);
  });

  it('keeps a restored stale alarm active without a duplicate raise and reports the whole silence at its clear', () => {
    const dir = tempDir();
    const cfg = config();
    let mono = 0;
    const outbox = openOutbox(dir);
    const first = new Processor(cfg.devices, { monotonic: () => mono });
    const emit = emitter(outbox);
    emit(first.process([ch4(0, 0.1)]));
    mono = 10_000;
    const stale = first.tick(T0 + 10_000);
    expect(stale.alarms).toMatchObject([{ alarm: 'stale', state: 'raised', value: 10 }]);
    emit(stale);
    outbox.commit();

    mono = 0;
    const second = new Processor(cfg.devices, { restored: outbox.readState(ALARM_STATE_PREFIX), monotonic: () => mono });
    mono = 60_000;
    expect(second.tick(T0 + 300_000).alarms).toEqual([]);
    expect(second.process([ch4(400, 0.1)]).alarms).toMatchObject([{ alarm: 'stale', state: 'cleared', value: 400 }]);
  });

  it('clears an active alarm the configuration no longer has, at the first tick', () => {
    const cfg = config();
    const restored = new Map([
      ['alarm/face/ch4/ch4-old', JSON.stringify({ type: 'high', severity: 'critical', limit: 2, value: 2.1, ts: T0 })],
      ['alarm/gone/x/low', 'not json'],
    ]);
    const processor = new Processor(cfg.devices, { restored, monotonic: () => 0 });
    const { alarms } = processor.tick(T0 + 5000);
    expect(alarms).toEqual([
      { state: 'cleared', device: 'face', point: 'ch4', alarm: 'ch4-old', type: 'high', severity: 'critical', value: null, limit: 2, ts: T0 + 5000, message: 'alarm no longer in the configuration', alarmState: 'normal' },
      { state: 'cleared', device: 'gone', point: 'x', alarm: 'low', type: 'low', severity: 'major', value: null, limit: null, ts: T0 + 5000, message: 'alarm no longer in the configuration', alarmState: 'normal' },
    ]);
    expect(alarms.map((a) => alarmStateEntry(a))).toEqual([{ key: 'alarm/face/ch4/ch4-old', value: null }, { key: 'alarm/gone/x/low', value: null }]);
    expect(processor.tick(T0 + 6000).alarms).toEqual([]);
  });
});

describe('Processor wiring', () => {
  it('passes points without processing through untouched, as the same array when nothing needed processing', () => {
    const processor = new Processor(config().devices, { monotonic: () => 0 });
    const batch = [{ device: 'face', point: 'temp', ts: T0, value: 21.5, quality: 'good' as const }];
    const { samples, alarms } = processor.process(batch);
    expect(samples).toBe(batch);
    expect(alarms).toEqual([]);
    const mixed = [batch[0], ch4(0, 0.1), batch[0]];
    const out = processor.process(mixed).samples;
    expect(out).toHaveLength(3);
    expect(out[0]).toBe(batch[0]);
    expect(out[2]).toBe(batch[0]);
  });

  it('lists the aggregate series to register for the birth message', () => {
    expect(aggregatePoints([{ id: 'pump', points: [{ id: 'p', aggregate: { windowS: 60, functions: ['min', 'avg'] } }, { id: 'q' }] }])).toEqual([
      { device: 'pump', point: 'p.min' },
      { device: 'pump', point: 'p.avg' },
    ]);
  });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'processing-restart-'));
  dirs.push(d);
  return d;
}

function openOutbox(dir: string): Outbox {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000 });
  open.push(ob);
  return ob;
}

describe('docs/processing.md', () => {
  it('has configuration examples that load, and the tunnel example raises its three stages', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../docs/processing.md', import.meta.url), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks).toHaveLength(2);
    const configs = blocks.map((b) => {
      const { config: c, issues } = parseConfig(b, 'processing.md');
      expect(issues).toEqual([]);
      return c!;
    });
    const tunnel = new Processor(configs[1].devices, { monotonic: () => 0 });
    const { alarms } = tunnel.process([0.4, 0.6, 1.1, 1.6].map((v, i) => ch4(i, v)));
    expect(alarms.map((a) => a.alarm)).toEqual(['ch4-alarm', 'ch4-stop', 'ch4-evacuate']);
  });
});
