/**
 * The link loop both bus families share, on a scripted link: every reopen waits out the backoff, which only
 * healthy() resets (never an open); the log stays bounded however often the link drops.
 */
import { describe, expect, it } from 'vitest';
import { LinkLoop, type LoopLink } from '../src/sources/link-loop.js';
import { recordingLogger } from './helpers/gateway.js';

/** A link whose opens fail with the queued reasons, then succeed; `drop()` loses it as a peer closing would. */
class ScriptedLink implements LoopLink {
  isOpen = false;
  opens = 0;
  failures: string[] = [];
  async open(): Promise<void> {
    const reason = this.failures.shift();
    if (reason) throw new Error(reason);
    this.opens++;
    this.isOpen = true;
  }
  async close(): Promise<void> {
    this.isOpen = false;
  }
}

function rig(onStep: (loop: LinkLoop, link: ScriptedLink) => Promise<void> | void) {
  const rec = recordingLogger();
  const link = new ScriptedLink();
  const delays: number[] = [];
  const loop: LinkLoop = new LinkLoop({
    log: rec.logger,
    link,
    target: 'tcp://10.0.0.5:502',
    reconnectMinMs: 1,
    reconnectMaxMs: 8,
    connectPauseMs: 0,
    random: () => 0.5,
    onLost: () => delays.push(loop.reconnectDelayMs),
    step: async () => {
      await onStep(loop, link);
      await loop.sleep(0);
    },
  });
  return { rec, link, loop, delays };
}

const until = async (cond: () => boolean) => {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

const drop = (loop: LinkLoop, link: ScriptedLink) => {
  link.isOpen = false;
  loop.lost('connection closed by the peer');
};

describe('LinkLoop', () => {
  it('a link lost before any good reply: the backoff grows to its cap, one warning and one "connected" in all', async () => {
    const { rec, link, loop, delays } = rig(drop);
    loop.start();
    await until(() => link.opens >= 30);
    await loop.stop();
    // The wait after each loss doubles and no open resets it: 1, 2, 4, 8 (the cap), 8, ...
    expect(delays.slice(0, 5)).toEqual([1, 2, 4, 8, 8]);
    expect(rec.warnings()).toEqual(['link lost before any good reply: connection closed by the peer; reconnecting with backoff (not logged again until a good reply)']);
    expect(rec.lines.filter((l) => l.msg === 'connected')).toHaveLength(1);
    expect(loop.linkState).toBe('stopped');
    expect(link.isOpen).toBe(false);
  });

  it('a good reply resets the backoff; losses of a proven link are logged at most once a minute', async () => {
    let n = 0;
    const { rec, link, loop, delays } = rig((l, k) => {
      l.healthy();
      if (++n % 2 === 0) drop(l, k);
    });
    loop.start();
    await until(() => link.opens >= 20);
    await loop.stop();
    expect(new Set(delays)).toEqual(new Set([1]));
    expect(rec.warnings()).toEqual(['link lost: connection closed by the peer; reconnecting']);
    // "connected" only after a logged problem: the first open, and the one after the logged loss.
    expect(rec.lines.filter((l) => l.msg === 'connected')).toHaveLength(2);
  });

  it('after a flapping spell, a good reply says the link is steady again', async () => {
    let flaps = 3;
    const { rec, link, loop } = rig((l, k) => {
      if (flaps-- > 0) return drop(l, k);
      l.healthy();
    });
    loop.start();
    await until(() => rec.lines.some((l) => /steady again/.test(l.msg)));
    await loop.stop();
    expect(link.opens).toBe(4);
    expect(rec.lines.find((l) => /steady again/.test(l.msg))!.msg).toBe('link steady again after 4 connections');
    expect(loop.reconnectDelayMs).toBe(1);
  });

  it('logs an open failure once per reason in a row', async () => {
    const { rec, link, loop } = rig(() => {});
    link.failures = ['connection refused', 'connection refused', 'connection refused', 'no route to host', 'connection refused'];
    loop.start();
    await until(() => link.opens === 1);
    await loop.stop();
    expect(rec.warnings()).toEqual([
      'cannot connect: connection refused; retrying with backoff',
      'cannot connect: no route to host; retrying with backoff',
      'cannot connect: connection refused; retrying with backoff',
    ]);
  });

  it('stop() during an open closes the link it just opened', async () => {
    const { link, loop } = rig(() => {});
    let release!: () => void;
    link.open = async function (this: ScriptedLink) {
      await new Promise<void>((r) => (release = r));
      this.isOpen = true;
    };
    loop.start();
    await until(() => release !== undefined);
    const stopped = loop.stop();
    release();
    await stopped;
    expect(link.isOpen).toBe(false);
  });
});

describe('LinkLoop.quietUntil', () => {
  it('never returns before the monotonic time asked for, whatever the timers do; at once when stopped', async () => {
    const { loop } = rig(() => {});
    loop.start();
    try {
      for (let i = 0; i < 20; i++) {
        const at = performance.now() + 7;
        await loop.quietUntil(at);
        expect(performance.now()).toBeGreaterThanOrEqual(at);
      }
    } finally {
      await loop.stop();
    }
    const t0 = performance.now();
    await loop.quietUntil(t0 + 60_000);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
