import { describe, expect, it } from 'vitest';
import { osSyncProbe, TIMESYNCD_FILE, type RunCommand } from '../src/clock/probe.js';

const enoent = () => Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' });
const failed = () => Object.assign(new Error('Command failed: exit 1'), { code: 1 });
const settle = () => new Promise((r) => setImmediate(r));

/** A fake command runner answering from a table, counting runs per command. */
function commands(answers: Record<string, () => string | Error>) {
  const runs: string[] = [];
  const run: RunCommand = async (cmd) => {
    runs.push(cmd);
    const a = answers[cmd]?.() ?? enoent();
    if (a instanceof Error) throw a;
    return a;
  };
  return { run, runs };
}

describe('OS sync probe', () => {
  it('the timesyncd file answers at once, without running anything', () => {
    const c = commands({});
    const probe = osSyncProbe({ exists: (p) => p === TIMESYNCD_FILE, run: c.run, platform: 'linux' });
    expect(probe.status()).toBe('synced');
    expect(c.runs).toEqual([]);
  });

  it('pending until timedatectl answers, then its yes/no', async () => {
    let answer = 'no\n';
    const c = commands({ timedatectl: () => answer });
    let now = 0;
    const probe = osSyncProbe({ exists: () => false, run: c.run, now: () => now, platform: 'linux' });
    expect(probe.status()).toBe('pending');
    await settle();
    expect(probe.status()).toBe('unsynced');
    answer = 'yes\n';
    now = 59_999;
    expect(probe.status()).toBe('unsynced'); // at most one run a minute
    await settle();
    expect(c.runs).toEqual(['timedatectl']);
    now = 60_000;
    probe.status();
    await settle();
    expect(probe.status()).toBe('synced');
    expect(c.runs).toEqual(['timedatectl', 'timedatectl']);
  });

  it('falls back to chronyc when timedatectl fails (no D-Bus in a container)', async () => {
    let leap = 'Not synchronised';
    const c = commands({ timedatectl: failed, chronyc: () => `Reference ID    : 00000000 ()\nLeap status     : ${leap}\n` });
    let now = 0;
    const probe = osSyncProbe({ exists: () => false, run: c.run, now: () => now, platform: 'linux' });
    probe.status();
    await settle();
    expect(probe.status()).toBe('unsynced');
    leap = 'Normal';
    now = 60_000;
    probe.status();
    await settle();
    await settle();
    expect(probe.status()).toBe('synced');
    // timedatectl is installed, only failing: it is asked again each round.
    expect(c.runs).toEqual(['timedatectl', 'chronyc', 'timedatectl', 'chronyc']);
  });

  it('unknown when nothing is installed, and nothing is run again', async () => {
    const c = commands({});
    let now = 0;
    const probe = osSyncProbe({ exists: () => false, run: c.run, now: () => now, platform: 'linux' });
    probe.status();
    await settle();
    await settle();
    expect(probe.status()).toBe('unknown');
    now = 600_000;
    expect(probe.status()).toBe('unknown');
    await settle();
    expect(c.runs).toEqual(['timedatectl', 'chronyc']);
  });

  it('unknown when installed commands give no usable answer', async () => {
    const c = commands({ timedatectl: () => 'maybe', chronyc: () => '506 Cannot talk to daemon' });
    const probe = osSyncProbe({ exists: () => false, run: c.run, platform: 'linux' });
    probe.status();
    await settle();
    await settle();
    expect(probe.status()).toBe('unknown');
  });

  it('unknown off Linux', () => {
    expect(osSyncProbe({ platform: 'darwin' }).status()).toBe('unknown');
  });

  it('the real probe on this machine answers without throwing', async () => {
    const probe = osSyncProbe();
    const first = probe.status();
    expect(['synced', 'pending', 'unknown']).toContain(first);
    for (let i = 0; i < 100 && probe.status() === 'pending'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(['synced', 'unsynced', 'unknown']).toContain(probe.status());
  });
});
