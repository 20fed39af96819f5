/**
 * Scenario 5c: the clock jumping forward and backward. The system clock cannot be stepped under a test, so the
 * clock guard gets injected wall and monotonic clocks (as in the gateway, between the sources and a real
 * outbox) and the wall clock is stepped at random while samples flow: before trust (a Pi booted at a wrong
 * date), at the NTP step that brings trust, and after it. Nothing may be lost or reordered; untrusted samples
 * must end up on the true timeline; trusted ones keep the wall time they were taken at.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncStatus } from '../../src/clock/core.js';
import { ClockGuard } from '../../src/clock/guard.js';
import { FLAG_TS_UNTRUSTED, Outbox } from '../../src/outbox/index.js';
import type { Sample } from '../../src/sample.js';
import { tempDir } from '../helpers/peers.js';
import { recordingLogger } from '../helpers/gateway.js';
import { SOAK, summary } from './helpers.js';

/** The true time is TRUE0 + mono. */
const TRUE0 = Date.UTC(2026, 10, 28, 6);
const HOUR = 3_600_000;

const cleanup: Array<() => unknown> = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

describe('faults: the clock jumping', () => {
  it('keeps every sample, in order, through random steps before and after trust', async () => {
    const t0 = Date.now();
    const clocks = { mono: 0, wall: Date.UTC(2025, 0, 1), sync: 'unsynced' as SyncStatus };
    const outbox = Outbox.open({ dir: tempDir('faults-clock'), logger: pino({ level: 'silent' }), commitIntervalMs: 60_000 });
    cleanup.push(() => outbox.close());
    const log = recordingLogger();
    const guard = new ClockGuard({ trust: 'auto', jumpThresholdMs: 2000, minValidDate: '2025-01-01' }, {
      logger: log.logger,
      wall: () => clocks.wall,
      mono: () => clocks.mono,
      probe: { status: () => clocks.sync },
      outbox: { target: outbox, fromSeq: 1 },
    });
    let n = 0;
    const truth: number[] = [];
    /** One second of a 10 Hz source, then a guard tick; sometimes a step of the wall clock first. */
    const second = (step: number) => {
      clocks.wall += step;
      for (let i = 0; i < 10; i++) {
        const reading: Sample = { device: 'd', point: 'p', ts: clocks.wall, value: ++n, quality: 'good' };
        truth.push(TRUE0 + clocks.mono);
        outbox.append(guard.stamp([reading]));
        clocks.mono += 100;
        clocks.wall += 100;
      }
      guard.tick();
      outbox.commit();
    };
    const randomStep = () => (Math.random() < 0.5 ? -1 : 1) * Math.round(3000 + Math.random() * 2 * HOUR);
    const seconds = SOAK ? 3600 : 300;
    const jumpEvery = 30;
    let injected = 0;
    for (let s = 0; s < seconds; s++) second(s > 0 && s % jumpEvery === 0 ? (injected++, randomStep()) : 0);
    const before = outbox.read(0, n + 1);
    const monotone = before.every((r, i) => i === 0 || r.ts >= before[i - 1]!.ts);
    expect(before.every((r) => (r.flags & FLAG_TS_UNTRUSTED) !== 0)).toBe(true);

    // NTP answers: the wall clock is stepped to the truth and the OS reports sync.
    clocks.wall = TRUE0 + clocks.mono;
    clocks.sync = 'synced';
    // The samples of the second in which trust arrives were stamped before it: corrected too.
    second(0);
    const untrustedCount = n;
    await guard.idle();
    expect(guard.trusted).toBe(true);

    let trustedWall: Array<[number, number]> = [];
    for (let s = 0; s < seconds; s++) {
      const step = s > 0 && s % jumpEvery === 0 ? (injected++, randomStep()) : 0;
      const from = clocks.wall + step;
      second(step);
      trustedWall.push([n - 9, from]);
    }
    trustedWall = trustedWall.slice(-5);

    const rows = outbox.read(0, n + 1);
    const seqsInOrder = rows.every((r, i) => r.seq === i + 1 && r.value === i + 1);
    const corrected = rows.slice(0, untrustedCount);
    const errors = corrected.map((r, i) => Math.abs(r.ts - truth[i]!));
    const maxError = Math.max(...errors);
    const status = guard.status();
    summary('clock stepped at random (in-process guard and outbox)', {
      produced: n, delivered: rows.length, lost: n - rows.length, duplicated: 0, dropped: 0, brokerLost: 0, missing: [],
    }, (Date.now() - t0) / 1000, {
      'steps injected': injected, 'steps detected': status.jumps, 'untrusted samples corrected': status.correctedSamples ?? 0,
      'max ms off the true time after correction': maxError,
    });
    expect(rows).toHaveLength(n);
    expect(seqsInOrder, 'seqs 1..n in acquisition order').toBe(true);
    expect(monotone, 'untrusted timestamps follow the monotonic clock, whatever the wall clock did').toBe(true);
    expect(status.correctedSamples).toBe(untrustedCount);
    expect(maxError).toBeLessThanOrEqual(1);
    expect(rows.every((r) => (r.flags & FLAG_TS_UNTRUSTED) === 0)).toBe(true);
    // Trusted: each sample keeps the wall time it was taken at, steps and all.
    for (const [value, wall] of trustedWall) expect(rows[value - 1]!.ts).toBe(wall);
    // Every injected step, plus the NTP step itself.
    expect(status.jumps).toBe(injected + 1);
    expect(log.warnings(/clock jumped/).length).toBe(injected / 2);
  });
});
