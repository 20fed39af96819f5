/** Running as a service: the install script's unit (staged, verified by systemd-analyze) and the sd_notify pings. */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, readlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { systemdNotifier } from '../src/systemd.js';
import { tempDir, which } from './helpers/peers.js';

const ROOT = new URL('..', import.meta.url).pathname;

describe('scripts/install-service.sh', () => {
  it('stages a hardened unit with a watchdog, the data directory and an example config', async () => {
    const stage = tempDir('stage');
    await promisify(execFile)('bash', [join(ROOT, 'scripts/install-service.sh'), '--root', stage, '--prefix', '/opt/fieldgate']);
    const unit = readFileSync(join(stage, 'etc/systemd/system/fieldgate.service'), 'utf8');
    for (const line of [
      'Type=notify', 'Restart=always', 'WatchdogSec=30', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/fieldgate', 'User=fieldgate', 'ExecReload=/bin/kill -HUP $MAINPID',
      'Environment=NODE_ENV=production MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072',
      'UMask=0027', 'CapabilityBoundingSet=\n', 'ProtectClock=yes', 'ProtectKernelLogs=yes', 'ProtectHostname=yes',
      'RestrictNamespaces=yes', 'RestrictRealtime=yes', 'SystemCallArchitectures=native', 'SystemCallFilter=@system-service',
      'PrivateMounts=yes', 'ProtectProc=invisible', 'MemoryHigh=192M', 'MemoryMax=256M', 'LimitNOFILE=4096',
      'DeviceAllow=char-ttyUSB rw',
      'StateDirectory=fieldgate', 'StateDirectoryMode=0750',
    ]) expect(unit).toContain(line);
    // A permanent error stops after a few starts instead of restarting forever; the limit lives in [Unit].
    const unitSection = unit.slice(0, unit.indexOf('[Service]'));
    expect(unitSection).toMatch(/^StartLimitIntervalSec=300$/m);
    expect(unitSection).toMatch(/^StartLimitBurst=5$/m);
    expect(unit).toMatch(/^ExecStart=\S+node --max-semi-space-size=2 --heap-growing-percent=30 \/opt\/fieldgate\/bin\/fieldgate\.js run -c \/etc\/fieldgate\/config\.yaml$/m);
    expect(unit).toMatch(/^SupplementaryGroups=(dialout|uucp)$/m);
    expect(existsSync(join(stage, 'opt/fieldgate/bin/fieldgate.js'))).toBe(true);
    expect(existsSync(join(stage, 'opt/fieldgate/node_modules'))).toBe(false);
    expect(readlinkSync(join(stage, 'usr/local/bin/fieldgate'))).toBe('/opt/fieldgate/bin/fieldgate.js');
    expect(readFileSync(join(stage, 'etc/fieldgate/config.yaml'), 'utf8')).toContain('dataDir: /var/lib/fieldgate');
  });

  it.skipIf(!which('systemd-analyze'))('writes a unit systemd-analyze accepts', async () => {
    const stage = tempDir('stage');
    await promisify(execFile)('bash', [join(ROOT, 'scripts/install-service.sh'), '--root', stage, '--prefix', ROOT.replace(/\/$/, '')]);
    const out = execFileSync('systemd-analyze', ['verify', join(stage, 'etc/systemd/system/fieldgate.service')], { encoding: 'utf8', stdio: 'pipe' });
    expect(out).not.toMatch(/Unknown (key|section)|Failed to parse/i);
  });

  it.skipIf(!which('systemd-analyze'))(`is rated OK by systemd-analyze security (was 7.3 MEDIUM)${which('systemd-analyze') ? '' : ': skipped, systemd-analyze is not installed'}`, async () => {
    const stage = tempDir('stage');
    await promisify(execFile)('bash', [join(ROOT, 'scripts/install-service.sh'), '--root', stage, '--prefix', ROOT.replace(/\/$/, '')]);
    const out = execFileSync('systemd-analyze', ['security', '--offline=true', '--no-pager', join(stage, 'etc/systemd/system/fieldgate.service')], { encoding: 'utf8', stdio: 'pipe' });
    const score = Number(/Overall exposure level for fieldgate\.service: ([\d.]+)/.exec(out)?.[1]);
    expect(score).toBeLessThanOrEqual(2.5);
  });

  it("starts node the way the unit's ExecStart and Environment do (its V8 flags accepted)", async () => {
    const stage = tempDir('stage');
    const prefix = ROOT.replace(/\/$/, '');
    await promisify(execFile)('bash', [join(ROOT, 'scripts/install-service.sh'), '--root', stage, '--prefix', prefix]);
    const unit = readFileSync(join(stage, 'etc/systemd/system/fieldgate.service'), 'utf8');
    const argv = /^ExecStart=(.*) run -c \S+$/m.exec(unit)![1]!.split(' ');
    const env = Object.fromEntries(/^Environment=(.*)$/m.exec(unit)![1]!.split(' ').map((kv) => kv.split('=') as [string, string]));
    const r = await promisify(execFile)(argv[0]!, [...argv.slice(1), 'validate', '-c', join(ROOT, 'config/village-water.yaml')], { env: { ...process.env, ...env } });
    expect(r.stdout).toMatch(/village-water\.yaml: ok \(1 bus, 3 devices/);
  });

  it('refuses an unknown option', async () => {
    await expect(promisify(execFile)('bash', [join(ROOT, 'scripts/install-service.sh'), '--frobnicate'])).rejects.toMatchObject({ code: 2 });
  });
});

describe('systemd notifications', () => {
  function fakeNotify() {
    const dir = tempDir('notify');
    const log = join(dir, 'calls');
    const cmd = join(dir, 'systemd-notify');
    writeFileSync(cmd, `#!/bin/sh\necho "$@" >> ${log}\n`);
    chmodSync(cmd, 0o755);
    return { cmd, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
  }
  const logger = pino({ level: 'silent' });

  it('does nothing outside systemd', () => {
    const fake = fakeNotify();
    const n = systemdNotifier(logger, {}, fake.cmd);
    n.ready();
    n.close();
    expect(fake.calls()).toEqual([]);
  });

  it('says ready and pings the watchdog at half its interval', async () => {
    const fake = fakeNotify();
    const n = systemdNotifier(logger, { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '1000000' }, fake.cmd);
    n.ready('polling 3 buses');
    await new Promise((r) => setTimeout(r, 1300));
    n.close();
    const calls = fake.calls();
    expect(calls[0]).toBe(`--pid=${process.pid} --ready --status=polling 3 buses`);
    expect(calls.filter((c) => c === `--pid=${process.pid} WATCHDOG=1`).length).toBeGreaterThanOrEqual(1);
  });
});
