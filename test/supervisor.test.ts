/**
 * The supervisor owns the gateway's lifecycle: it stays up with nothing to do, applies or refuses a reload,
 * restarts in the process when the core changes, ends with exit 1 on a fatal outbox error and 0 on a stop.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { OutboxError } from '../src/outbox/index.js';
import { Supervisor } from '../src/supervisor/supervisor.js';
import { config, recordingLogger } from './helpers/gateway.js';
import { runGateway, writeConfig } from './helpers/gw-process.js';
import { tempDir } from './helpers/ports.js';

const running: Supervisor[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop('test end');
});

function supervise(first: Config, load?: () => Config) {
  const rec = recordingLogger();
  const changes: Config[] = [];
  const supervisor = new Supervisor(first, { logger: rec.logger, hooks: {}, load, afterChange: async (c) => void changes.push(c) });
  running.push(supervisor);
  return { supervisor, rec, changes };
}

const base = (dataDir: string, id = 'sup-1') => config({ gateway: { id, dataDir }, status: { enabled: false } });

describe('Supervisor', () => {
  it('refuses a bad reload with one headline and a line per error, and keeps the running gateway', async () => {
    const dir = tempDir('sup');
    const { supervisor, rec, changes } = supervise(base(dir), () => {
      throw new UserError('gateway.yaml: 2 errors', 2, ['gateway.yaml:3:5 buses: bad', 'gateway.yaml:9:1 devices: bad']);
    });
    const before = supervisor.gateway;
    await supervisor.reload();
    expect(supervisor.gateway).toBe(before);
    expect(changes).toEqual([]);
    const errors = rec.lines.filter((l) => l.level === 50).map((l) => l.msg);
    expect(errors).toEqual(['reload refused, still running the previous configuration: gateway.yaml: 2 errors', 'gateway.yaml:3:5 buses: bad', 'gateway.yaml:9:1 devices: bad']);
  });

  it('applies a reload in place when only acquisition changed, and restarts when the identity changed', async () => {
    const dir = tempDir('sup');
    let next = base(dir);
    const { supervisor, changes } = supervise(base(dir), () => next);
    const first = supervisor.gateway;
    await supervisor.reload();
    expect(supervisor.gateway).toBe(first);
    next = base(dir, 'sup-2');
    await supervisor.reload();
    expect(supervisor.gateway).not.toBe(first);
    expect(supervisor.gateway.config.gateway.id).toBe('sup-2');
    expect(changes.map((c) => c.gateway.id)).toEqual(['sup-1', 'sup-2']);
  });

  it('hands one last-value cache to every gateway it starts, pruned to what the new configuration has', async () => {
    const dir = tempDir('sup');
    const { supervisor } = supervise(base(dir), () => base(dir, 'sup-2'));
    const first = supervisor.gateway;
    expect(first.lastValues).toBe(supervisor.lastValues);
    supervisor.lastValues.update([{ device: 'gone', point: 'p', ts: 1, value: 1, quality: 'good' }]);
    await supervisor.reload();
    expect(supervisor.gateway).not.toBe(first);
    expect(supervisor.gateway.lastValues).toBe(supervisor.lastValues);
    expect(supervisor.lastValues.get('gone', 'p')).toBeUndefined();
  });

  it('ends with exit code 1 after a fatal outbox error, after a clean stop, and 0 after a stop', async () => {
    const a = supervise(base(tempDir('sup')));
    a.supervisor.escaped('uncaught exception', new OutboxError('OUTBOX_CORRUPT', 'the outbox /x/outbox.db is corrupt'));
    expect(await a.supervisor.done).toBe(1);
    expect(a.rec.lines.filter((l) => l.level === 60).map((l) => l.msg)).toEqual(['the outbox /x/outbox.db is corrupt; stopping (exit 1)']);
    expect(a.rec.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);

    const b = supervise(base(tempDir('sup')));
    b.supervisor.escaped('uncaught exception', new Error('a bug in a driver'));
    expect(b.rec.lines.some((l) => l.level === 50 && l.msg === 'uncaught exception (kept running)')).toBe(true);
    expect(b.supervisor.stopped).toBe(false);
    await b.supervisor.stop('SIGTERM');
    expect(await b.supervisor.done).toBe(0);
  });

  it('refuses to start on an outbox that cannot be opened, with the reason and exit code 1', () => {
    const dir = tempDir('sup');
    const file = writeConfig(dir, {}); // a data directory that is a file
    let thrown: unknown;
    try {
      supervise(base(file));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UserError);
    expect((thrown as UserError).exitCode).toBe(1);
    expect((thrown as UserError).message).toMatch(/^cannot open the outbox /);
  });
});

describe('fieldgate run', () => {
  it('stays up with no bus, no uplink and no status page, until told to stop', async () => {
    const dir = tempDir('sup-run');
    const gw = runGateway(writeConfig(dir, { gateway: { id: 'idle', dataDir: join(dir, 'data') }, status: { enabled: false } }));
    try {
      await gw.running();
      const early = await Promise.race([gw.exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('running'), 1500))]);
      expect(early, gw.log()).toBe('running');
      expect(await gw.stop()).toBe(0);
    } finally {
      await gw.stop('SIGKILL');
    }
  });
});
