/**
 * Alarm management after ISA-18.2 (docs/processing.md, "Alarm states"): every transition of the four states,
 * latching, shelving with its expiry and the unshelve that brings the announcement in line, the state rows
 * that restore each state after a restart (and the rows of older builds), the refusals, and the v1 wire.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { alarmSchema } from '../src/config/processing-schema.js';
import { decodeEvent, encodeEvent } from '../src/events.js';
import {
  Processor,
  alarmActive,
  alarmStateEntry,
  stateAfter,
  type AlarmActionResult,
  type AlarmConfig,
  type AlarmEvent,
  type IsaState,
} from '../src/processing/index.js';
import { alarmEventJson, withSeq } from '../src/uplink/messages.js';
import { expectValid, validator } from './helpers/payload-schema.js';

const S = 1000;
const T0 = 1_767_225_600_000;

/** The state rows as the outbox keeps them: each event's alarmStateEntry applied in order. */
class Rows {
  readonly map = new Map<string, string>();
  apply(events: readonly AlarmEvent[]): void {
    for (const e of events) {
      const { key, value } = alarmStateEntry(e);
      if (value === null) this.map.delete(key);
      else this.map.set(key, value);
    }
  }
}

/** One point `tank/level` with the alarms given; time in seconds from T0, the monotonic clock alongside. */
function rig(alarms: AlarmConfig[], restored?: ReadonlyMap<string, string>, startSec = 0) {
  let mono = startSec * S;
  const p = new Processor([{ id: 'tank', points: [{ id: 'level', alarms }] }], { monotonic: () => mono, restored });
  const rows = new Rows();
  const log: AlarmEvent[] = [];
  const took = (events: AlarmEvent[]) => {
    rows.apply(events);
    log.push(...events);
    return events;
  };
  /** An operator's action at T0 + sec: the monotonic clock moves there first. */
  const acted = (sec: number, act: () => AlarmActionResult) => {
    mono = sec * S;
    const r = act();
    if (r.ok) took(r.events);
    return r;
  };
  return {
    p,
    rows,
    log,
    feed(sec: number, value: number | null, quality: 'good' | 'bad' = 'good') {
      mono = sec * S;
      return took(p.process([{ device: 'tank', point: 'level', ts: T0 + sec * S, value, quality }]).alarms);
    },
    tick(sec: number) {
      mono = sec * S;
      return took(p.tick(T0 + sec * S).alarms);
    },
    ack: (id: string, sec: number, by?: string, note?: string) => acted(sec, () => p.acknowledge('tank', 'level', id, { ts: T0 + sec * S, by, note })),
    shelve: (id: string, sec: number, durationS: number, by?: string, note?: string) =>
      acted(sec, () => p.shelve('tank', 'level', id, durationS, { ts: T0 + sec * S, by, note })),
    unshelve: (id: string, sec: number, by?: string) => acted(sec, () => p.unshelve('tank', 'level', id, { ts: T0 + sec * S, by })),
    state: (id: string) => p.alarmStates().find((a) => a.alarm === id)!,
  };
}

/** What a consumer of the events sees: each event's state and the alarm's state after it. */
const seen = (events: readonly AlarmEvent[]) => events.map((e) => `${e.state}>${stateAfter(e)}`);
const eventsOf = (r: AlarmActionResult) => {
  if (!r.ok) throw new Error(r.reason);
  return seen(r.events);
};

const HIGH: AlarmConfig = { type: 'high', limit: 5, hysteresis: 0.5, message: 'tank full' };
const LATCHED: AlarmConfig = { ...HIGH, id: 'burst', latch: true };

describe('ISA-18.2 states, not latched', () => {
  it('normal -> unacknowledged -> acknowledged -> normal', () => {
    const r = rig([HIGH]);
    expect(r.state('high').state).toBe('normal');
    expect(seen(r.feed(0, 6))).toEqual(['raised>unacknowledged']);
    expect(r.state('high')).toMatchObject({ state: 'unacknowledged', condition: true, value: 6, ts: T0 });
    expect(eventsOf(r.ack('high', 10, 'ana', 'pump 2 started'))).toEqual(['acknowledged>acknowledged']);
    expect(r.log.at(-1)).toMatchObject({ state: 'acknowledged', alarmState: 'acknowledged', by: 'ana', note: 'pump 2 started', value: 6, ts: T0 + 10 * S });
    expect(r.state('high').state).toBe('acknowledged');
    expect(seen(r.feed(20, 4))).toEqual(['cleared>normal']);
    expect(r.log.at(-1)).toMatchObject({ state: 'cleared', alarmState: 'normal', value: 4 });
    expect(r.state('high')).toMatchObject({ state: 'normal', condition: false });
    expect(r.rows.map.size).toBe(0);
  });

  it('unacknowledged -> returned-unacknowledged (a plain clear) -> normal by the acknowledgement', () => {
    const r = rig([HIGH]);
    r.feed(0, 6);
    const [clear] = r.feed(5, 4);
    // Exactly the clear older builds made: no new key.
    expect(clear).toEqual({ state: 'cleared', device: 'tank', point: 'level', alarm: 'high', type: 'high', severity: 'major', value: 4, limit: 5, ts: T0 + 5 * S, message: 'tank full' });
    expect(r.state('high').state).toBe('returned-unacknowledged');
    expect(r.rows.map.size).toBe(1);
    expect(eventsOf(r.ack('high', 9, 'ana'))).toEqual(['acknowledged>normal']);
    expect(r.state('high').state).toBe('normal');
    expect(r.rows.map.size).toBe(0);
  });

  it('returned-unacknowledged -> unacknowledged when the condition comes back; acknowledged -> unacknowledged at a new occurrence', () => {
    const r = rig([HIGH]);
    r.feed(0, 6);
    r.feed(1, 4);
    expect(seen(r.feed(2, 7))).toEqual(['raised>unacknowledged']);
    r.ack('high', 3);
    expect(seen(r.feed(4, 4))).toEqual(['cleared>normal']);
    expect(seen(r.feed(5, 6))).toEqual(['raised>unacknowledged']);
    expect(r.state('high').state).toBe('unacknowledged');
  });

  it('keeps the bytes of older builds for a raise and a clear nobody acknowledged', () => {
    const r = rig([HIGH]);
    const raised = r.feed(0, 6)[0];
    const cleared = r.feed(1, 4)[0];
    expect(alarmEventJson('g', raised)).toBe('{"v":1,"event":"alarm","g":"g","state":"raised","device":"tank","point":"level","alarm":"high","type":"high","severity":"major","value":6,"limit":5,"ts":1767225600000,"message":"tank full"}');
    expect(alarmEventJson('g', cleared)).toBe('{"v":1,"event":"alarm","g":"g","state":"cleared","device":"tank","point":"level","alarm":"high","type":"high","severity":"major","value":4,"limit":5,"ts":1767225601000,"message":"tank full"}');
  });
});

describe('latch', () => {
  it('a latched alarm returns when the condition goes and is cleared only by the acknowledgement', () => {
    const r = rig([LATCHED]);
    expect(seen(r.feed(0, 6))).toEqual(['raised>unacknowledged']);
    expect(seen(r.feed(1, 3))).toEqual(['returned>unacknowledged']);
    expect(r.log.at(-1)).toMatchObject({ state: 'returned', returned: true, value: 3, ts: T0 + S });
    expect(r.state('burst')).toMatchObject({ state: 'unacknowledged', condition: false, latch: true });
    expect(r.p.activeAlarms().map((a) => a.alarm)).toEqual(['burst']);
    expect(r.feed(2, 2)).toEqual([]);
    expect(eventsOf(r.ack('burst', 60, 'ops', 'valve closed'))).toEqual(['cleared>normal']);
    expect(r.log.at(-1)).toMatchObject({ state: 'cleared', alarmState: 'normal', by: 'ops', note: 'valve closed', value: 3, ts: T0 + 60 * S });
    expect(r.log.at(-1)!.returned).toBeUndefined();
    expect(r.state('burst').state).toBe('normal');
    expect(r.rows.map.size).toBe(0);
  });

  it('an acknowledged latched alarm clears when the condition goes', () => {
    const r = rig([LATCHED]);
    r.feed(0, 6);
    expect(eventsOf(r.ack('burst', 1))).toEqual(['acknowledged>acknowledged']);
    expect(seen(r.feed(2, 3))).toEqual(['cleared>normal']);
  });

  it('a returned latched alarm is raised again when the condition comes back, and then acknowledged stays active', () => {
    const r = rig([LATCHED]);
    r.feed(0, 6);
    r.feed(1, 3);
    expect(seen(r.feed(2, 6))).toEqual(['raised>unacknowledged']);
    expect(r.state('burst').condition).toBe(true);
    expect(eventsOf(r.ack('burst', 3))).toEqual(['acknowledged>acknowledged']);
    expect(seen(r.feed(4, 3))).toEqual(['cleared>normal']);
  });

  it('latches a stale alarm: the good sample returns it, the acknowledgement clears it with the silence', () => {
    const r = rig([{ type: 'stale', afterS: 10, latch: true }]);
    expect(seen(r.tick(10))).toEqual(['raised>unacknowledged']);
    expect(r.feed(25, 1)).toMatchObject([{ state: 'returned', value: 25 }]);
    expect(r.ack('stale', 30)).toMatchObject({ ok: true, events: [{ state: 'cleared', alarmState: 'normal', value: 25 }] });
  });

  it('the sample that returns a latched alarm is reported whatever the deadband', () => {
    const p = new Processor([{ id: 'tank', points: [{ id: 'level', deadband: 100, alarms: [LATCHED] }] }], { monotonic: () => 0 });
    const s = (sec: number, value: number) => ({ device: 'tank', point: 'level', ts: T0 + sec * S, value, quality: 'good' as const });
    p.process([s(0, 6)]);
    expect(p.process([s(1, 6.1)]).samples).toEqual([]);
    expect(p.process([s(2, 3)]).samples.map((x) => x.value)).toEqual([3]);
  });
});

describe('shelving', () => {
  it('announces nothing while shelved, and at the expiry in tick() raises what is active', () => {
    const r = rig([HIGH]);
    expect(eventsOf(r.shelve('high', 0, 3600, 'tech', 'sensor under repair'))).toEqual(['shelved>normal']);
    expect(r.log.at(-1)).toMatchObject({ state: 'shelved', until: T0 + 3600 * S, by: 'tech', note: 'sensor under repair' });
    expect(r.state('high')).toMatchObject({ state: 'normal', shelvedUntil: T0 + 3600 * S });
    expect(r.rows.map.size).toBe(1); // normal but shelved: kept
    expect(r.feed(10, 6)).toEqual([]);
    expect(r.state('high')).toMatchObject({ state: 'normal', condition: true });
    expect(r.tick(3599)).toEqual([]);
    expect(seen(r.tick(3600))).toEqual(['unshelved>normal', 'raised>unacknowledged']);
    expect(r.log.at(-2)!.by).toBeUndefined(); // the shelve ended at its time
    expect(r.log.at(-1)).toMatchObject({ state: 'raised', value: 6, ts: T0 + 3600 * S });
    expect(r.state('high').shelvedUntil).toBeUndefined();
  });

  it('clears at the unshelve an alarm whose condition went away meanwhile', () => {
    const r = rig([HIGH]);
    r.feed(0, 6);
    expect(eventsOf(r.shelve('high', 1, 600))).toEqual(['shelved>unacknowledged']);
    expect(r.feed(2, 3)).toEqual([]);
    expect(r.state('high').state).toBe('unacknowledged');
    expect(eventsOf(r.unshelve('high', 30, 'tech'))).toEqual(['unshelved>unacknowledged', 'cleared>returned-unacknowledged']);
    expect(r.log.at(-2)).toMatchObject({ by: 'tech' });
  });

  it('announces nothing at the unshelve when the condition came and went while shelved', () => {
    const r = rig([HIGH]);
    r.shelve('high', 0, 600);
    r.feed(1, 6);
    r.feed(2, 3);
    expect(seen(r.tick(600))).toEqual(['unshelved>normal']);
    expect(r.rows.map.size).toBe(0);
  });

  it('raises again at the unshelve an acknowledged alarm whose condition ended and came back while shelved', () => {
    const r = rig([HIGH]);
    r.feed(0, 6);
    r.ack('high', 1);
    r.shelve('high', 2, 600);
    r.feed(3, 3);
    r.feed(4, 6);
    expect(eventsOf(r.unshelve('high', 5))).toEqual(['unshelved>acknowledged', 'raised>unacknowledged']);
  });

  it('keeps an alarm active through the shelve when its condition held all along', () => {
    const r = rig([HIGH]);
    r.feed(0, 6);
    r.ack('high', 1);
    r.shelve('high', 2, 600);
    r.feed(3, 7);
    expect(eventsOf(r.unshelve('high', 5))).toEqual(['unshelved>acknowledged']);
  });

  it('returns a latched alarm at the unshelve when its condition went away meanwhile', () => {
    const r = rig([LATCHED]);
    r.feed(0, 6);
    r.shelve('burst', 1, 600);
    r.feed(2, 3);
    expect(seen(r.tick(601))).toEqual(['unshelved>unacknowledged', 'returned>unacknowledged']);
    expect(eventsOf(r.ack('burst', 602))).toEqual(['cleared>normal']);
  });

  it('shelving a shelved alarm sets a new end', () => {
    const r = rig([HIGH]);
    r.shelve('high', 0, 600);
    expect(r.shelve('high', 100, 60)).toMatchObject({ ok: true, events: [{ state: 'shelved', until: T0 + 160 * S }] });
    expect(r.tick(600 - 1)).toMatchObject([{ state: 'unshelved' }]);
  });

  it('suppresses a stale alarm too: the silence raises nothing until the unshelve', () => {
    const r = rig([{ type: 'stale', afterS: 10 }]);
    r.shelve('stale', 0, 60);
    expect(r.tick(30)).toEqual([]);
    expect(r.state('stale').condition).toBe(true);
    expect(r.tick(60)).toMatchObject([{ state: 'unshelved' }, { state: 'raised', value: 60 }]);
  });

  it('takes latch and shelveMaxS in a configuration file, on every alarm type', () => {
    const yaml = `
gateway: { id: g }
buses:
  - { id: gas, transport: line, port: /dev/ttyUSB0 }
devices:
  - id: face
    bus: gas
    parse: { kv: {} }
    points:
      - id: ch4
        field: CH4
        alarms:
          - { id: stop, type: high, limit: 1.0, latch: true, shelveMaxS: 3600 }
          - { id: fall, type: rateOfChange, limit: -0.5, latch: true }
          - { type: stale, afterS: 10, shelveMaxS: 60 }
`;
    const { config, issues } = parseConfig(yaml, 'g.yaml');
    expect(issues).toEqual([]);
    const p = new Processor(config!.devices, { monotonic: () => 0 });
    expect(p.alarmStates().map((a) => [a.alarm, a.latch])).toEqual([['stop', true], ['fall', true], ['stale', false]]);
    expect(p.shelve('face', 'ch4', 'stale', 61, { ts: T0 })).toMatchObject({ ok: false });
    expect(p.shelve('face', 'ch4', 'fall', 28_800, { ts: T0 })).toMatchObject({ ok: true });
    expect(parseConfig(yaml.replace('shelveMaxS: 3600', 'shelveMaxS: 0'), 'g.yaml').issues.length).toBeGreaterThan(0);
  });

  it('bounds the duration by shelveMaxS: 8 h by default, up to 7 days, validated', () => {
    expect(alarmSchema.parse({ type: 'high', limit: 1 })).toMatchObject({ latch: false, shelveMaxS: 28_800 });
    expect(alarmSchema.parse({ type: 'stale', afterS: 5, latch: true, shelveMaxS: 604_800 })).toMatchObject({ latch: true, shelveMaxS: 604_800 });
    for (const bad of [0, 604_801, 1.5, -1]) expect(alarmSchema.safeParse({ type: 'rateOfChange', limit: -1, shelveMaxS: bad }).success).toBe(false);
    expect(alarmSchema.safeParse({ type: 'low', limit: 1, latch: 'yes' }).success).toBe(false);
    const r = rig([HIGH, { ...HIGH, id: 'short', shelveMaxS: 60 }]);
    expect(r.shelve('high', 0, 28_800).ok).toBe(true);
    expect(r.shelve('short', 0, 61)).toEqual({ ok: false, reason: 'durationS must be from 1 to 60 s (shelveMaxS of alarm short on tank/level), not 61' });
    expect(r.shelve('short', 0, 60).ok).toBe(true);
  });
});

describe('refusals', () => {
  it('says why in words, and changes nothing', () => {
    const r = rig([HIGH, LATCHED]);
    const before = JSON.stringify(r.p.alarmStates());
    const no = (x: AlarmActionResult) => (x.ok ? 'ok' : x.reason);
    expect(no(r.p.acknowledge('tank', 'level', 'low', { ts: T0 }))).toBe('no alarm low on tank/level');
    expect(no(r.p.shelve('tank', 'volume', 'high', 60, { ts: T0 }))).toBe('no alarm high on tank/volume');
    expect(no(r.p.unshelve('pump', 'level', 'high', { ts: T0 }))).toBe('no alarm high on pump/level');
    expect(no(r.ack('high', 0))).toBe('alarm high on tank/level is normal: nothing to acknowledge');
    expect(no(r.unshelve('high', 0))).toBe('alarm high on tank/level is not shelved');
    for (const d of [0, 0.5, 28_801, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(no(r.shelve('high', 0, d))).toBe(`durationS must be from 1 to 28800 s (shelveMaxS of alarm high on tank/level), not ${d}`);
    }
    expect(JSON.stringify(r.p.alarmStates())).toBe(before);
    r.feed(1, 6);
    r.ack('high', 2);
    const acked = JSON.stringify(r.p.alarmStates());
    expect(no(r.ack('high', 3))).toBe('alarm high on tank/level is already acknowledged');
    r.shelve('burst', 4, 60);
    expect(no(r.ack('burst', 5))).toBe('alarm burst on tank/level is shelved: unshelve it before acknowledging it');
    expect(r.log.filter((e) => e.ts === T0 + 3 * S || e.ts === T0 + 5 * S)).toEqual([]);
    expect(JSON.parse(JSON.stringify(r.p.alarmStates()))[0]).toEqual(JSON.parse(acked)[0]);
  });
});

describe('restart', () => {
  /** Drives an alarm into a state, restarts from the rows, and returns both processors' views and the new rig. */
  function restart(alarms: AlarmConfig[], drive: (r: ReturnType<typeof rig>) => void) {
    const a = rig(alarms);
    drive(a);
    const b = rig(alarms, new Map(a.rows.map), 1000);
    const view = (x: ReturnType<typeof rig>) => x.p.alarmStates().map(({ condition: _c, ...v }) => v);
    expect(view(b)).toEqual(view(a));
    return b;
  }

  it('restores unacknowledged: not raised again, cleared when the condition goes', () => {
    const b = restart([HIGH], (r) => r.feed(0, 6));
    expect(b.feed(1001, 6)).toEqual([]);
    expect(seen(b.feed(1002, 3))).toEqual(['cleared>returned-unacknowledged']);
  });

  it('restores acknowledged: the clear then leaves it normal', () => {
    const b = restart([HIGH], (r) => {
      r.feed(0, 6);
      r.ack('high', 1, 'ana');
    });
    expect(b.state('high').state).toBe('acknowledged');
    expect(seen(b.feed(1001, 3))).toEqual(['cleared>normal']);
  });

  it('restores returned-unacknowledged, which has no active condition: the acknowledgement makes it normal', () => {
    const b = restart([HIGH], (r) => {
      r.feed(0, 6);
      r.feed(1, 3);
    });
    expect(b.state('high')).toMatchObject({ state: 'returned-unacknowledged', condition: false, value: 3 });
    expect(b.p.activeAlarms()).toEqual([]);
    expect(b.feed(1001, 3)).toEqual([]);
    expect(eventsOf(b.ack('high', 1002))).toEqual(['acknowledged>normal']);
    expect(b.rows.map.size).toBe(0);
  });

  it('restores a latched alarm that returned: still active, and the acknowledgement clears it', () => {
    const b = restart([LATCHED], (r) => {
      r.feed(0, 6);
      r.feed(1, 3);
    });
    expect(b.state('burst')).toMatchObject({ state: 'unacknowledged', condition: false });
    expect(b.feed(1001, 3)).toEqual([]);
    expect(eventsOf(b.ack('burst', 1002))).toEqual(['cleared>normal']);
  });

  it('restores a returned row of an alarm no longer latched as active: the condition ends it', () => {
    const a = rig([LATCHED]);
    a.feed(0, 6);
    a.feed(1, 3);
    const b = rig([{ ...HIGH, id: 'burst' }], new Map(a.rows.map), 1000);
    expect(b.state('burst')).toMatchObject({ state: 'unacknowledged', condition: true });
    expect(seen(b.feed(1001, 3))).toEqual(['cleared>returned-unacknowledged']);
  });

  it('restores a shelve with its end: silent until then, unshelved at the end by tick()', () => {
    const b = restart([HIGH], (r) => {
      r.feed(0, 6);
      r.shelve('high', 1, 3600, 'tech');
    });
    expect(b.state('high')).toMatchObject({ state: 'unacknowledged', shelvedUntil: T0 + 3601 * S });
    expect(b.feed(1001, 3)).toEqual([]);
    expect(seen(b.tick(3601))).toEqual(['unshelved>unacknowledged', 'cleared>returned-unacknowledged']);
  });

  it('restores a normal alarm that is shelved, and a shelve that ended while the gateway was down ends at the first tick', () => {
    const b = restart([HIGH], (r) => r.shelve('high', 0, 60));
    expect(b.state('high')).toMatchObject({ state: 'normal', shelvedUntil: T0 + 60 * S });
    b.feed(1001, 7);
    expect(seen(b.tick(1002))).toEqual(['unshelved>normal', 'raised>unacknowledged']);
  });

  it('restores a stale alarm acknowledged, so its clear still reports the whole silence', () => {
    const b = restart([{ type: 'stale', afterS: 10 }], (r) => {
      r.tick(10);
      r.ack('stale', 20);
    });
    expect(b.state('stale')).toMatchObject({ state: 'acknowledged', value: 20 });
    expect(b.feed(1100, 1)).toMatchObject([{ state: 'cleared', alarmState: 'normal', value: 1100 }]);
  });

  it('reads the rows of older builds as active and unacknowledged', () => {
    const rows = new Map([
      ['alarm/tank/level/high', JSON.stringify({ type: 'high', severity: 'major', limit: 5, value: 6.5, ts: T0 })],
      ['alarm/tank/level/burst', 'not json'],
    ]);
    const r = rig([HIGH, LATCHED], rows);
    expect(r.p.alarmStates().map((a) => [a.alarm, a.state, a.value, a.ts])).toEqual([['high', 'unacknowledged', 6.5, T0], ['burst', 'unacknowledged', null, null]]);
    expect(r.feed(1, 6)).toEqual([]);
    expect(eventsOf(r.ack('high', 2))).toEqual(['acknowledged>acknowledged']);
    expect(seen(r.feed(3, 3))).toEqual(['cleared>normal', 'returned>unacknowledged']);
  });

  it('clears at the first tick a restored alarm of any state the configuration no longer has, deleting its row', () => {
    const a = rig([HIGH, { ...HIGH, id: 'other' }]);
    a.feed(0, 6);
    a.feed(1, 3); // both returned-unacknowledged
    a.shelve('other', 2, 60);
    const b = rig([], new Map(a.rows.map));
    const cleared = b.tick(3);
    expect(cleared.map((e) => [e.alarm, e.state, e.alarmState, e.message])).toEqual([
      ['high', 'cleared', 'normal', 'alarm no longer in the configuration'],
      ['other', 'cleared', 'normal', 'alarm no longer in the configuration'],
    ]);
    expect(b.rows.map.size).toBe(0);
  });
});

describe('lists and helpers', () => {
  it('alarmStates lists every configured alarm; activeAlarms those raised and not cleared', () => {
    const r = rig([HIGH, LATCHED, { type: 'stale', afterS: 30, severity: 'minor' }]);
    r.feed(0, 6);
    r.ack('high', 1);
    r.shelve('stale', 2, 60);
    expect(r.p.alarmStates()).toEqual([
      { key: 'alarm/tank/level/high', device: 'tank', point: 'level', alarm: 'high', type: 'high', severity: 'major', state: 'acknowledged', condition: true, value: 6, limit: 5, ts: T0 + S, latch: false, message: 'tank full' },
      { key: 'alarm/tank/level/burst', device: 'tank', point: 'level', alarm: 'burst', type: 'high', severity: 'major', state: 'unacknowledged', condition: true, value: 6, limit: 5, ts: T0, latch: true, message: 'tank full' },
      { key: 'alarm/tank/level/stale', device: 'tank', point: 'level', alarm: 'stale', type: 'stale', severity: 'minor', state: 'normal', shelvedUntil: T0 + 62 * S, condition: false, value: null, limit: 30, ts: T0 + 2 * S, latch: false },
    ]);
    expect(r.p.activeAlarms().map((a) => a.alarm)).toEqual(['high', 'burst']);
  });

  it('stateAfter and alarmActive read events with and without alarmState', () => {
    const base: AlarmEvent = { state: 'raised', device: 'd', point: 'p', alarm: 'a', type: 'high', severity: 'major', value: 1, limit: 1, ts: 1 };
    const cases: Array<[Partial<AlarmEvent>, IsaState, boolean]> = [
      [{}, 'unacknowledged', true],
      [{ state: 'cleared' }, 'returned-unacknowledged', false],
      [{ state: 'cleared', alarmState: 'normal' }, 'normal', false],
      [{ state: 'returned', alarmState: 'unacknowledged', returned: true }, 'unacknowledged', true],
      [{ state: 'acknowledged', alarmState: 'acknowledged' }, 'acknowledged', true],
      [{ state: 'acknowledged', alarmState: 'normal' }, 'normal', false],
      [{ state: 'shelved', alarmState: 'normal', until: 5 }, 'normal', false],
    ];
    for (const [e, state, active] of cases) {
      expect(stateAfter({ ...base, ...e })).toBe(state);
      expect(alarmActive({ ...base, ...e })).toBe(active);
    }
  });
});

describe('on the wire', () => {
  it('every new event is valid v1 JSON, carries its fields, and round-trips through its stored row', () => {
    const r = rig([HIGH, LATCHED]);
    r.feed(0, 6);
    r.ack('high', 1, 'ana', 'seen');
    r.feed(2, 3);
    r.shelve('high', 3, 60, 'tech', 'repair');
    r.unshelve('high', 4, 'tech');
    r.ack('burst', 5, 'ops');
    expect(r.log.map((e) => `${e.alarm}:${e.state}`)).toEqual([
      'high:raised', 'burst:raised', 'high:acknowledged', 'high:cleared', 'burst:returned', 'high:shelved', 'high:unshelved', 'burst:cleared',
    ]);
    for (const e of r.log) {
      expectValid(validator('alarmEvent'), withSeq(alarmEventJson('g', e), 7, '3f9a0c41d27be856'));
      const row = encodeEvent({ kind: 'alarm', alarm: e });
      expect(decodeEvent(row.kind, row.payload)).toEqual({ kind: 'alarm', alarm: e });
      expect(decodeEvent('alarm', alarmEventJson('g', e))).toEqual({ kind: 'alarm', alarm: e });
    }
    const json = r.log.map((e) => JSON.parse(alarmEventJson('g', e)) as Record<string, unknown>);
    expect(json[2]).toMatchObject({ state: 'acknowledged', alarmState: 'acknowledged', by: 'ana', note: 'seen' });
    expect(json[3]).toMatchObject({ state: 'cleared', alarmState: 'normal' });
    expect(json[4]).toMatchObject({ state: 'returned', alarmState: 'unacknowledged', returned: true });
    expect(json[5]).toMatchObject({ state: 'shelved', alarmState: 'normal', until: T0 + 63 * S, by: 'tech', note: 'repair' });
    expect(json[7]).toMatchObject({ state: 'cleared', alarmState: 'normal', by: 'ops' });
    expect(alarmEventJson('g', r.log[2])).toBe(
      '{"v":1,"event":"alarm","g":"g","state":"acknowledged","device":"tank","point":"level","alarm":"high","type":"high","severity":"major","value":6,"limit":5,"ts":1767225601000,"message":"tank full","alarmState":"acknowledged","by":"ana","note":"seen"}',
    );
  });

  it('refuses stored rows whose new fields are of the wrong kind', () => {
    const ok = { state: 'acknowledged', device: 'd', point: 'p', alarm: 'a', type: 'high', severity: 'major', value: 1, limit: 1, ts: 1 };
    for (const bad of [{ alarmState: 'latched' }, { returned: false }, { until: '5' }, { by: 3 }, { note: null }]) {
      expect(decodeEvent('alarm', JSON.stringify({ ...ok, ...bad })).kind).toBe('unreadable');
    }
  });
});

describe('property: the events, the rows and the state agree', () => {
  type Step =
    | { k: 'sample'; v: number }
    | { k: 'ack' }
    | { k: 'shelve'; d: number }
    | { k: 'unshelve' }
    | { k: 'tick'; s: number }
    | { k: 'restart' };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('sample' as const), v: fc.constantFrom(3, 4.8, 5, 6) }), weight: 5 },
    { arbitrary: fc.constant({ k: 'ack' as const }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('shelve' as const), d: fc.integer({ min: 0, max: 40 }) }), weight: 1 },
    { arbitrary: fc.constant({ k: 'unshelve' as const }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('tick' as const), s: fc.integer({ min: 1, max: 30 }) }), weight: 1 },
    { arbitrary: fc.constant({ k: 'restart' as const }), weight: 1 },
  );

  it('a consumer folding the events sees the state alarmStates() reports; restarts restore it; the announcement follows the condition when not shelved', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(step, { minLength: 1, maxLength: 60 }), (latch, steps) => {
        const cfg: AlarmConfig[] = [{ type: 'high', limit: 5, hysteresis: 0.5, latch, shelveMaxS: 30 }];
        let r = rig(cfg);
        let sec = 0;
        let view: IsaState = 'normal';
        let shelved = false;
        for (const s of steps) {
          sec += 1;
          const before = JSON.stringify(r.p.alarmStates());
          let events: AlarmEvent[] = [];
          if (s.k === 'sample') events = r.feed(sec, s.v);
          else if (s.k === 'tick') events = r.tick((sec += s.s));
          else if (s.k === 'restart') {
            const rows = new Map(r.rows.map);
            const next = rig(cfg, rows, sec);
            next.rows.map.clear();
            for (const [k, v] of rows) next.rows.map.set(k, v);
            // A normal alarm that is not shelved has no row: its last value and time are not kept.
            const strip = (x: typeof r) =>
              x.p.alarmStates().map(({ condition: _c, value, ts, ...v }) => (v.state === 'normal' && v.shelvedUntil === undefined ? v : { ...v, value, ts }));
            expect(strip(next)).toEqual(strip(r));
            r = next;
          } else {
            const res = s.k === 'ack' ? r.ack('high', sec) : s.k === 'shelve' ? r.shelve('high', sec, s.d) : r.unshelve('high', sec);
            if (res.ok) events = res.events;
            else expect(JSON.stringify(r.p.alarmStates())).toBe(before);
          }
          for (const e of events) {
            if (shelved && e.state !== 'unshelved' && e.state !== 'shelved') throw new Error(`${e.state} while shelved`);
            if (e.state === 'shelved') shelved = true;
            if (e.state === 'unshelved') shelved = false;
            view = stateAfter(e);
          }
          const a = r.state('high');
          expect(a.state).toBe(view);
          expect(a.shelvedUntil !== undefined).toBe(shelved);
          const active = view === 'unacknowledged' || view === 'acknowledged';
          if (!shelved && s.k !== 'restart') {
            // Not shelved: an active condition is announced; an announced alarm without it is a latched one that returned.
            if (a.condition) expect(active).toBe(true);
            else if (active) expect(latch && view === 'unacknowledged').toBe(true);
          }
          // The rows hold exactly the alarms that are not normal or are shelved.
          expect(r.rows.map.size).toBe(view !== 'normal' || shelved ? 1 : 0);
        }
      }),
      { numRuns: 400 },
    );
  });
});
