/** The clock guard with injected clocks and OS probe, against a real outbox and the payload codec. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncStatus } from '../src/clock/core.js';
import { ClockGuard, type ClockChange, type ClockOptions } from '../src/clock/guard.js';
import { FLAG_TS_UNTRUSTED, Outbox, type StoredSample } from '../src/outbox/index.js';
import type { Sample } from '../src/sample.js';
import { decodeTelemetry, encodeTelemetry, type OutgoingSample, type PayloadFormat } from '../src/uplink/payload.js';
import { recordingLogger } from './helpers/gateway.js';

const NOW = Date.UTC(2025, 5, 1, 12);
const DAY = 86_400_000;
const OPTIONS: ClockOptions = { trust: 'auto', jumpThresholdMs: 2000, minValidDate: '2025-01-01' };

const dirs: string[] = [];
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Injected clocks: the true time is NOW + mono; the wall clock is whatever the test sets. */
function fakeClocks() {
  const c = { mono: 10_000, wall: 0, sync: 'unsynced' as SyncStatus, probes: 0 };
  const deps = { wall: () => c.wall, mono: () => c.mono, probe: { status: () => (c.probes++, c.sync) } };
  /** Lets time pass on both clocks. */
  const advance = (ms: number) => {
    c.mono += ms;
    c.wall += ms;
  };
  return { c, deps, advance };
}

function openOutbox(dir: string): Outbox {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 10_000 });
  cleanup.push(() => ob.close());
  return ob;
}

const reading = (ts: number, value = 1): Sample => ({ device: 'pump', point: 'pressure', ts, value, quality: 'good' });

function roundTrip(format: PayloadFormat, rows: StoredSample[]) {
  const out: OutgoingSample[] = rows.map((s) => ({ ...s, pointIndex: s.series }));
  const lookup = (i: number) => (i === rows[0].series ? { index: i, device: 'pump', point: 'pressure' } : undefined);
  return decodeTelemetry(encodeTelemetry(format, 'gw', 'ep', out), lookup);
}

describe('clock guard and outbox', () => {
  it('samples taken before NTP sync are flagged, then corrected in the outbox and unflagged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clock-guard-'));
    dirs.push(dir);
    // An earlier run left a flagged sample on its own timeline: nothing can correct it, so it stays flagged.
    const earlier = openOutbox(dir);
    earlier.append([{ ...reading(123), flags: FLAG_TS_UNTRUSTED }]);
    earlier.close();
    const outbox = openOutbox(dir);

    const { c, deps, advance } = fakeClocks();
    const log = recordingLogger();
    const changes: ClockChange[] = [];
    const guard = new ClockGuard(OPTIONS, { ...deps, logger: log.logger, outbox: { target: outbox, fromSeq: outbox.startupReport.lastSeq + 1 } });
    guard.onChange((e) => changes.push(e));
    expect(guard.trusted).toBe(false);
    expect(log.warnings(/clock not trusted \(the OS reports no NTP sync yet\)/)).toHaveLength(1);

    const sink = (samples: Sample[]) => outbox.append(guard.stamp(samples));
    sink([reading(c.wall, 1)]); // true time NOW + 10 000
    advance(1000);
    guard.tick();
    sink([reading(c.wall - 200, 2)]); // acquired 200 ms before it reached the sink: true time NOW + 10 800
    outbox.commit();
    advance(1000);
    c.wall += DAY; // a wrong step while untrusted (say a restored date): the timeline ignores it
    guard.tick();
    sink([reading(c.wall, 3)]); // true time NOW + 12 000, left in memory: the correction commits it first

    const untrusted = outbox.read(1, 10);
    expect(untrusted.map((s) => [s.ts, s.flags])).toEqual([[0, FLAG_TS_UNTRUSTED], [800, FLAG_TS_UNTRUSTED]]);
    for (const format of ['compact', 'json'] as const) {
      expect(roundTrip(format, untrusted)).toMatchObject([{ ts: 0, value: 1, timeUntrusted: true }, { ts: 800, value: 2, timeUntrusted: true }]);
    }

    advance(1000);
    c.wall = NOW + c.mono; // NTP steps the clock right and reports sync
    c.sync = 'synced';
    guard.tick();
    await guard.idle();

    const rows = outbox.read(0, 10);
    expect(rows.map((s) => [s.value, s.ts, s.flags])).toEqual([
      [1, 123, FLAG_TS_UNTRUSTED],
      [1, NOW + 10_000, 0],
      [2, NOW + 10_800, 0],
      [3, NOW + 12_000, 0],
    ]);
    for (const format of ['compact', 'json'] as const) {
      const decoded = roundTrip(format, rows.slice(1));
      expect(decoded.map((s) => s.ts)).toEqual([NOW + 10_000, NOW + 10_800, NOW + 12_000]);
      expect(decoded.every((s) => s.timeUntrusted === undefined)).toBe(true);
    }
    const correctionMs = NOW + 10_000;
    expect(changes).toEqual([
      { type: 'jump', jumpMs: DAY, trusted: false },
      { type: 'jump', jumpMs: NOW + 10_000 - DAY, trusted: false },
      { type: 'trusted', reason: 'os-sync', correctionMs, untrustedMs: 3000 },
      { type: 'corrected', correctionMs, samples: 3, complete: true },
    ]);
    expect(log.lines.filter((l) => l.msg.startsWith('clock synchronised')).map((l) => l.msg)).toEqual([`clock synchronised; corrected 3 samples by +${correctionMs} ms`]);
    expect(guard.status()).toMatchObject({ trusted: true, reason: 'os-sync', trustedAt: NOW + 13_000, correctionMs, correctedSamples: 3, jumps: 2 });

    // Trusted now: samples pass through untouched and the OS is not asked again.
    const probes = c.probes;
    const later = [reading(c.wall, 4)];
    expect(guard.stamp(later)).toBe(later);
    advance(1000);
    c.sync = 'unsynced';
    guard.tick();
    expect(guard.trusted).toBe(true);
    expect(c.probes).toBe(probes);

    // A step while trusted: logged once with its size; what came before keeps its time.
    advance(1000);
    c.wall -= 5000;
    guard.tick();
    advance(1000);
    guard.tick();
    expect(log.warnings(/clock jumped/)).toEqual(['clock jumped by -5000 ms; samples before the jump keep their timestamps']);
    expect(outbox.read(1, 10).map((s) => s.ts)).toEqual([NOW + 10_000, NOW + 10_800, NOW + 12_000]);
  });

  it('a sample whose own ts predates a step is stamped at the time it reached the sink', () => {
    const { c, deps, advance } = fakeClocks();
    const guard = new ClockGuard(OPTIONS, { ...deps, logger: pino({ level: 'silent' }) });
    const before = c.wall;
    advance(1000);
    c.wall += DAY;
    const [s] = guard.stamp([reading(before)]);
    expect(s).toMatchObject({ ts: 1000, flags: FLAG_TS_UNTRUSTED });
    const [t] = guard.stamp([{ ...reading(c.wall + 50), flags: 4 }]); // from the future: age unknown, taken as 0
    expect(t).toMatchObject({ ts: 1000, flags: 4 | FLAG_TS_UNTRUSTED });
  });

  it('auto without sync information trusts a date after minValidDate, and corrects what came before', async () => {
    const { c, deps, advance } = fakeClocks();
    c.sync = 'unknown';
    const log = recordingLogger();
    const guard = new ClockGuard(OPTIONS, { ...deps, logger: log.logger });
    expect(guard.status()).toMatchObject({ trusted: false, reason: 'before-min-valid-date' });
    expect(log.warnings(/minValidDate/)).toHaveLength(1);
    advance(1000);
    c.wall = NOW;
    guard.tick();
    await guard.idle();
    expect(guard.status()).toMatchObject({ trusted: true, reason: 'min-valid-date', correctedSamples: 0 });
    expect(log.lines.at(-1)?.msg).toMatch(/^clock trusted \(no sync information.*corrected 0 samples by \+\d+ ms$/);
  });

  it('always: trusted at once, the OS never asked, samples untouched', () => {
    const { c, deps } = fakeClocks();
    const guard = new ClockGuard({ ...OPTIONS, trust: 'always' }, { ...deps, logger: pino({ level: 'silent' }) });
    guard.tick();
    const samples = [reading(0)];
    expect(guard.stamp(samples)).toBe(samples);
    expect(c.probes).toBe(0);
  });

  it('sync-required: a plausible date is not enough', () => {
    const { c, deps, advance } = fakeClocks();
    c.wall = NOW;
    c.sync = 'unknown';
    const guard = new ClockGuard({ ...OPTIONS, trust: 'sync-required' }, { ...deps, logger: pino({ level: 'silent' }) });
    advance(1000);
    guard.tick();
    expect(guard.stamp([reading(c.wall)])[0].flags).toBe(FLAG_TS_UNTRUSTED);
    c.sync = 'synced';
    guard.tick();
    expect(guard.trusted).toBe(true);
  });

  it('start ticks on a timer, stop is idempotent, a throwing listener is logged', async () => {
    const { c, deps } = fakeClocks();
    const log = recordingLogger();
    const guard = new ClockGuard(OPTIONS, { ...deps, logger: log.logger, tickMs: 5 });
    guard.onChange(() => {
      throw new Error('boom');
    });
    guard.start();
    guard.start();
    c.wall = NOW;
    c.sync = 'synced';
    for (let i = 0; i < 100 && !guard.trusted; i++) await new Promise((r) => setTimeout(r, 5));
    expect(guard.trusted).toBe(true);
    await guard.stop();
    await guard.stop();
    expect(log.lines.some((l) => l.msg === 'clock onChange listener threw')).toBe(true);
  });

  it('a stop during a long correction leaves the rest flagged and says so; a failing one is logged', async () => {
    for (const failing of [false, true]) {
      const { c, deps } = fakeClocks();
      const log = recordingLogger();
      let windows = 0;
      const target = {
        retime: () => {
          if (failing) throw new Error('disk I/O error');
          windows++;
          return 10;
        },
        maxSeq: () => 1e9,
      };
      const guard = new ClockGuard(OPTIONS, { ...deps, logger: log.logger, outbox: { target, fromSeq: 1 } });
      c.wall = NOW;
      c.sync = 'synced';
      guard.tick();
      await new Promise((r) => setImmediate(r));
      await guard.stop();
      if (failing) {
        expect(log.warnings(/correcting the stored samples failed/)).toHaveLength(1);
        expect(guard.status().correctedSamples).toBeNull();
      } else {
        expect(windows).toBeGreaterThan(0);
        expect(log.warnings(/stopped after correcting \d+ samples/)).toHaveLength(1);
        expect(guard.status().correctedSamples).toBe(windows * 10);
      }
    }
  });

  it('rejects a minValidDate that is not a date', () => {
    expect(() => new ClockGuard({ ...OPTIONS, minValidDate: '2025-02-30' }, { logger: pino({ level: 'silent' }) })).toThrow(/minValidDate/);
  });
});
