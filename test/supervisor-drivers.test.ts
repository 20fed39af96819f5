/**
 * A source driver that cannot load (a broken install: a module missing from the bundle) leaves a gateway that
 * would poll nothing: the supervisor ends the daemon with exit 1 and one fatal line naming the cause, instead of
 * running on with every bus silent.
 */
import { describe, expect, it, vi } from 'vitest';
import { FATAL_EXIT, Supervisor } from '../src/supervisor/supervisor.js';
import { config, recordingLogger } from './helpers/gateway.js';
import { tempDir } from './helpers/ports.js';

vi.mock('../src/sources/modbus/bus.js', () => {
  throw new Error('broken install');
});

describe('Supervisor: source drivers', () => {
  it('ends with exit 1 and one fatal line when a driver cannot load', async () => {
    const rec = recordingLogger();
    const supervisor = new Supervisor(
      config({
        gateway: { id: 'sup-drv', dataDir: tempDir('sup-drv') },
        status: { enabled: false },
        buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: 1 }],
        devices: [{ id: 'pump', bus: 'plc', unit: 1, points: [{ id: 'p', fc: 3, address: 0 }] }],
      }),
      { logger: rec.logger, hooks: {} },
    );
    expect(await supervisor.done).toBe(FATAL_EXIT);
    const fatal = rec.lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'SOURCES_NOT_STARTED' });
    // (vitest words the import failure its own way; the cause is in the parentheses.)
    expect(fatal[0]!.msg).toMatch(/^the sources could not be started \(.+\), so no bus would be polled; stopping \(exit 1\)$/);
    expect(supervisor.stopped).toBe(true);
  });
});
