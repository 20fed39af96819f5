/**
 * Secrets in the configuration never leave it by value: not in a validation error (which a refused reload
 * writes to the journal), not in `fieldgate validate`'s output, not in the retained birth's configHash.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { secretFreeJson } from '../src/config/secrets.js';
import { configHash } from '../src/gateway.js';
import { fieldgate } from './helpers/cli.js';
import { runGateway } from './helpers/gw-process.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/peers.js';
import { errors, yaml } from './fixtures/config/text.js';

const SECRETS = ['sh0rt', 'hunter2', 'gw-account', '12345678', 's3cret.pass'];

function expectNoSecret(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

describe('validation errors', () => {
  it('never show the status token, the broker account or a password, whatever is wrong with them', () => {
    const lines = errors(
      yaml(
        'gateway: { id: gw }',
        'uplink:',
        '  url: mqtts://broker.example.net',
        '  username: 12345678', //           a number where text is expected
        '  passwordFile: 12345678',
        'status:',
        '  listen: 0.0.0.0:8080',
        '  token: sh0rt', //                 too short
      ),
    );
    expect(lines).toEqual([
      'c.yaml:4:13 uplink.username: must be text, got a number (not shown)',
      'c.yaml:5:17 uplink.passwordFile: must be text, got a number (not shown)',
      'c.yaml:8:10 status.token: must be at least 8 characters, got 5 characters (not shown)',
    ]);
    expectNoSecret(lines.join('\n'));
  });

  it('refuses a user and password in uplink.url, pointing at username and passwordFile, without echoing them', () => {
    const lines = errors(yaml('gateway: { id: gw }', 'uplink:', '  url: mqtts://gw-account:hunter2@broker.example.net:8883'));
    expect(lines).toEqual([
      'c.yaml:3:8 uplink.url: must not hold a user name or password (the part before "@"): put the user in uplink.username and the password in the file uplink.passwordFile (or FIELDGATE_MQTT_PASSWORD)',
    ]);
    // A URL that is wrong in another way is shown without its user info too.
    const malformed = errors(yaml('gateway: { id: gw }', 'uplink:', '  url: "mqtt:/gw-account:hunter2@broker"'));
    expect(malformed).toEqual(['c.yaml:3:8 uplink.url: must be mqtt://HOST[:PORT], mqtts://, ws:// or wss://, got "***@broker"']);
    expectNoSecret(malformed.join('\n'));
  });

  it('shows a plain value as before', () => {
    expect(errors(yaml('gateway: { id: gw }', 'status: { listen: 127.0.0.1:8080, enabled: maybe }'))).toEqual([
      'c.yaml:2:44 status.enabled: must be true or false, got "maybe"',
    ]);
  });
});

describe('configHash', () => {
  const base = {
    gateway: { id: 'gw', clock: { trust: 'always' } },
    buses: [{ id: 'a', transport: 'tcp', host: '127.0.0.1' }],
    devices: [{ id: 'd', bus: 'a', unit: 1, points: [{ id: 'p', address: 0 }] }],
    uplink: { url: 'mqtts://broker.example.net', username: 'gw-account', passwordFile: '/etc/fieldgate/s3cret.pass' },
    status: { token: 'hunter2-hunter2' },
  };
  const hash = (raw: unknown) => configHash(configSchema.parse(raw));

  it('does not change with the token, the user or the password file, and does with a point', () => {
    const h = hash(base);
    expect(hash({ ...base, status: { token: 'another-token-entirely' } })).toBe(h);
    expect(hash({ ...base, uplink: { ...base.uplink, username: 'other', passwordFile: '/run/other' } })).toBe(h);
    expect(hash({ ...base, devices: [{ ...base.devices[0], points: [{ id: 'p', address: 1 }] }] })).not.toBe(h);
    // Whether a token is set is part of the configuration; its value is not.
    expect(hash({ ...base, status: {} })).not.toBe(h);
  });

  it('is the same for the same configuration written in another key order', () => {
    const reordered = { status: base.status, uplink: base.uplink, devices: base.devices, buses: base.buses, gateway: base.gateway };
    expect(hash(reordered)).toBe(hash(base));
    expect(hash(base)).toMatch(/^[0-9a-f]{12}$/);
  });

  it('hashes text that holds no secret', () => {
    const json = secretFreeJson(configSchema.parse(base));
    expectNoSecret(json);
    expect(JSON.parse(json).status.token).toBe('(set)');
  });
});

const HOSTILE = (unknown: number) =>
  yaml(
    'gateway:',
    '  id: gw',
    ...Array.from({ length: unknown }, (_, i) => `  typo${i}: 1`),
    'uplink:',
    '  url: mqtts://gw-account:hunter2@broker.example.net',
    'status:',
    '  token: sh0rt',
  );

describe('fieldgate validate and a refused reload', () => {
  it('validate prints the first errors, a count, and no secret', async () => {
    const file = join(tempDir('cfg-validate'), 'gw.yaml');
    writeFileSync(file, HOSTILE(300));
    const r = await fieldgate(['validate', '-c', file]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`fieldgate: ${file}: invalid configuration, 302 errors`);
    expect(lines).toHaveLength(102);
    expect(lines[101]).toBe('... and 202 more');
    expectNoSecret(r.stdout + r.stderr);
    // The two secret-bearing errors sit past the first 100 here; fewer typos bring them into the list.
    writeFileSync(file, HOSTILE(1));
    const short = await fieldgate(['validate', '-c', file]);
    expect(short.stderr).toContain('uplink.url: must not hold a user name or password');
    expect(short.stderr).toContain('status.token: must be at least 8 characters, got 5 characters (not shown)');
    expectNoSecret(short.stdout + short.stderr);
  });

  it('a SIGHUP with a bad or oversized file logs bounded, secret-free errors and keeps running', async () => {
    const dir = tempDir('cfg-reload');
    const file = join(dir, 'gw.yaml');
    // The status page keeps the process alive: with no bus and no uplink it would have nothing to wait for.
    const good = { gateway: { id: 'reload-secrets', dataDir: join(dir, 'data'), clock: { trust: 'always' } }, status: { listen: `127.0.0.1:${await freePort()}` } };
    writeFileSync(file, stringify(good));
    const gw = runGateway(file);
    try {
      await gw.running();
      expect(gw.log()).toContain('gateway started');
      const refusals = () => gw.log().split('\n').filter((l) => l.includes('reload refused')).length;
      const waitForRefusals = async (n: number) => {
        while (refusals() < n && gw.child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 50));
      };

      writeFileSync(file, HOSTILE(1).replace('  id: gw', `  id: gw\n  dataDir: ${join(dir, 'data')}`));
      gw.child.kill('SIGHUP');
      await waitForRefusals(1);
      expect(gw.log()).toContain('must not hold a user name or password');
      expect(gw.log()).toContain('got 5 characters (not shown)');

      writeFileSync(file, HOSTILE(5000));
      gw.child.kill('SIGHUP');
      await waitForRefusals(2);
      writeFileSync(file, `${stringify(good)}# ${'x'.repeat(2 * 1024 * 1024)}\n`);
      gw.child.kill('SIGHUP');
      await waitForRefusals(3);
      expect(gw.log()).toContain('a configuration file may be at most 1 MiB');

      expect(gw.child.exitCode).toBeNull();
      expectNoSecret(gw.log());
      // 5,002 errors: the first 100 and a count, once in the refusal's record and once a line each.
      expect(gw.log()).toContain('... and 4902 more');
      expect(gw.log().split('\n').filter((l) => l.includes('typo')).length).toBeLessThanOrEqual(2 * 101);
    } finally {
      await gw.stop();
    }
  });
});
