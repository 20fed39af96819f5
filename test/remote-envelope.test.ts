import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { judgeConfig, parseEnvelope, publicKeyFrom, signatureValid, MAX_ENVELOPE_BYTES } from '../src/supervisor/envelope.js';

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const pub = publicKeyFrom(publicKey.export({ type: 'spki', format: 'pem' }));

const yaml = (extra = '') => `gateway:
  id: gw-1
  dataDir: /var/lib/fieldgate
remoteConfig:
  enabled: true
  publicKeyFile: /etc/fieldgate/config.pub
buses:
  - { id: plc, transport: tcp, host: 10.0.0.5 }
devices:
  - id: pump
    bus: plc
    unit: 1
    points:
      - { id: pressure, fc: 4, address: 0 }
${extra}`;

const running = parseConfig(yaml(), 'local.yaml').config as Config;
const envelope = (text: string, key = privateKey, over: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ v: 1, version: 7, config: text, sig: sign(null, Buffer.from(text, 'utf8'), key).toString('base64'), ...over }));

describe('the pushed configuration envelope', () => {
  it('reads a signed envelope and checks its signature', () => {
    const p = parseEnvelope(envelope(yaml()));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.envelope.version).toBe(7);
    expect(signatureValid(p.envelope, pub)).toBe(true);
    const forged = parseEnvelope(envelope(yaml(), other.privateKey));
    expect(forged.ok && signatureValid(forged.envelope, pub)).toBe(false);
    // Signed, then changed on the way: the signature no longer matches.
    const good = parseEnvelope(envelope(yaml()));
    expect(good.ok && signatureValid({ ...good.envelope, config: good.envelope.config.replace('10.0.0.5', '10.0.0.6') }, pub)).toBe(false);
  });

  it.each([
    [Buffer.from('{'), /not JSON/],
    [Buffer.from('[]'), /not a JSON object/],
    [envelope('x', privateKey, { v: 2 }), /"v" must be 1/],
    [envelope('x', privateKey, { version: 0 }), /"version" must be a whole number above 0/],
    [envelope('x', privateKey, { version: 1.5 }), /"version"/],
    [envelope('x', privateKey, { config: 5 }), /"config" must be the YAML file/],
    [envelope('x', privateKey, { sig: undefined }), /not signed/],
    [envelope('x', privateKey, { sig: 'abc$' }), /"sig" must be base64/],
    [envelope('x', privateKey, { sig: Buffer.alloc(10).toString('base64') }), /64-byte Ed25519 signature, got 10 bytes/],
    [envelope('x', privateKey, { extra: 1 }), /unknown key "extra"/],
    [Buffer.alloc(MAX_ENVELOPE_BYTES + 1, 0x20), /at most/],
  ])('refuses %#', (payload, why) => {
    const p = parseEnvelope(payload);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.reason).toMatch(why);
  });

  it('keeps the version of a refused envelope when it could read one, to report it', () => {
    expect(parseEnvelope(envelope('x', privateKey, { sig: undefined }))).toMatchObject({ ok: false, version: 7 });
  });

  it('never throws on random bytes or random objects (fuzz)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => typeof parseEnvelope(Buffer.from(b)).ok === 'boolean'), { numRuns: 2000 });
    const value = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.base64String({ maxLength: 100 }));
    const obj = fc.dictionary(fc.constantFrom('v', 'version', 'config', 'sig', 'x', '__proto__'), value, { maxKeys: 5 });
    fc.assert(fc.property(obj, (o) => {
      const p = parseEnvelope(Buffer.from(JSON.stringify(o)));
      return p.ok ? p.envelope.sig.length === 64 && p.envelope.version > 0 : p.reason.length > 0;
    }), { numRuns: 3000 });
  });
});

describe('judging a pushed file', () => {
  it('accepts a valid file that leaves the guarded keys alone', () => {
    const j = judgeConfig(yaml('      - { id: level, fc: 4, address: 1 }\n'), 8, running);
    expect(j.ok).toBe(true);
    if (j.ok) expect(j.config.devices[0]!.points.map((p) => p.id)).toEqual(['pressure', 'level']);
  });

  it('rejects an invalid file with every error at its key path', () => {
    const j = judgeConfig(yaml('      - { id: level, fc: 9, address: -1 }\n'), 8, running);
    expect(j.ok).toBe(false);
    if (j.ok) return;
    expect(j.reason).toMatch(/the file is invalid \(2 errors\)/);
    expect(j.errors!.map((e) => e.path).sort()).toEqual(['devices[0].points[1].address', 'devices[0].points[1].fc']);
  });

  it.each([
    [yaml().replace('id: gw-1', 'id: gw-2'), 'gateway.id'],
    [yaml().replace('/var/lib/fieldgate', '/tmp/x'), 'gateway.dataDir'],
    [yaml().replace('enabled: true', 'enabled: false'), 'remoteConfig'],
    [yaml().replace('/etc/fieldgate/config.pub', '/tmp/evil.pub'), 'remoteConfig'],
  ])('refuses a change of what only the device may change (%#)', (text, path) => {
    const j = judgeConfig(text, 8, running);
    expect(j).toMatchObject({ ok: false, reason: expect.stringContaining('can only be changed in the file on the device'), errors: [{ path }] });
  });

  it('refuses a pushed secret and keeps the device its own status token', () => {
    expect(judgeConfig(`${yaml()}status:\n  token: pushed-secret-123\n`, 8, running)).toMatchObject({ ok: false, errors: [{ path: 'status.token' }] });
    const withToken = parseConfig(`${yaml()}status:\n  token: device-secret-1\n`, 'l').config as Config;
    const j = judgeConfig(`${yaml()}status:\n  listen: 127.0.0.1:9090\n`, 9, withToken);
    expect(j.ok && j.config.status).toEqual({ enabled: true, listen: '127.0.0.1:9090', token: 'device-secret-1' });
  });
});
