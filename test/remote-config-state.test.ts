/**
 * RemoteConfig's decisions at a start and a reload, on a real ConfigStore: which file runs after a crash, a
 * second crash on probation, a local edit, a missing or broken version file.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { ConfigStore } from '../src/supervisor/config-store.js';
import { textHash } from '../src/supervisor/envelope.js';
import { RemoteConfig } from '../src/supervisor/remote-config.js';
import type { Gateway } from '../src/gateway.js';
import { tempDir } from './helpers/peers.js';

function site() {
  const dir = tempDir('remote-state');
  const pub = join(dir, 'k.pub');
  const keys = generateKeyPairSync('ed25519');
  writeFileSync(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  const text = (points: string[]) => `gateway: { id: g, dataDir: ${join(dir, 'data')} }
remoteConfig: { enabled: true, publicKeyFile: ${pub}, confirmS: 30 }
buses: [{ id: plc, transport: tcp, host: 127.0.0.1 }]
devices: [{ id: d, bus: plc, unit: 1, points: [${points.map((p, i) => `{ id: ${p}, fc: 4, address: ${i} }`).join(', ')}] }]
`;
  const localText = text(['a']);
  const local = parseConfig(localText, 'local').config as Config;
  const store = ConfigStore.forDataDir(join(dir, 'data'));
  const remote = (lt = localText, l = local, apply: (next: Config) => Promise<void> = async () => {}) => {
    const r = new RemoteConfig({ localFile: 'local.yaml', local: l, localText: lt, log: pino({ level: 'silent' }), enqueue: async (_w, c) => c(), apply, gateway: () => ({ buses: [] }) as unknown as Gateway });
    r.stop();
    return r;
  };
  /** A pushed version as config/desired carries it, signed with the site's key. */
  const envelope = (version: number, config: string) => Buffer.from(JSON.stringify({ v: 1, version, config, sig: sign(null, Buffer.from(config, 'utf8'), keys.privateKey).toString('base64') }));
  return { text, localText, local, store, remote, envelope };
}

const points = (c: Config) => c.devices[0]!.points.map((p) => p.id);

describe('remote configuration at a start', () => {
  it('runs the device file when nothing was pushed, and records its base', () => {
    const s = site();
    expect(points(s.remote().startup())).toEqual(['a']);
    expect(s.store.readState()).toEqual({ base: textHash(s.localText), seen: 0 });
  });

  it('runs the pushed version that ran last', () => {
    const s = site();
    s.store.saveVersion(5, s.text(['a', 'b']));
    s.store.writeState({ base: textHash(s.localText), applied: { version: 5, hash: 'x' }, seen: 5 });
    expect(points(s.remote().startup())).toEqual(['a', 'b']);
  });

  it('gives a change on probation its window again after one crash, and rolls it back after a second', () => {
    const s = site();
    s.store.saveVersion(4, s.text(['a', 'b']));
    s.store.saveVersion(5, s.text(['a', 'b', 'c']));
    s.store.writeState({ base: textHash(s.localText), applied: { version: 5, hash: 'h5' }, pending: { version: 5, hash: 'h5', previous: { version: 4, hash: 'h4' }, since: 1, starts: 0 }, seen: 5 });
    expect(points(s.remote().startup())).toEqual(['a', 'b', 'c']);
    expect(s.store.readState()?.pending?.starts).toBe(1);
    expect(points(s.remote().startup())).toEqual(['a', 'b']);
    expect(s.store.readState()).toMatchObject({ applied: { version: 4 }, report: { version: 5, state: 'rolled-back', reason: expect.stringMatching(/restarted twice/) } });
    expect(s.store.readState()?.pending).toBeUndefined();
  });

  it('lets an edited device file win over pushed versions, and ignores versions it had seen', () => {
    const s = site();
    s.store.saveVersion(5, s.text(['a', 'b']));
    s.store.writeState({ base: 'not-this-file', applied: { version: 5, hash: 'x' }, seen: 5 });
    expect(points(s.remote().startup())).toEqual(['a']);
    expect(s.store.readState()).toEqual({ base: textHash(s.localText), seen: 5 });
  });

  it('runs the device file when the pushed version on disk is missing or no longer valid', () => {
    const s = site();
    s.store.writeState({ base: textHash(s.localText), applied: { version: 6, hash: 'x' }, seen: 6 });
    expect(points(s.remote().startup())).toEqual(['a']);
    s.store.saveVersion(7, 'gateway: { id: other }\n');
    s.store.writeState({ base: textHash(s.localText), applied: { version: 7, hash: 'x' }, seen: 7 });
    expect(points(s.remote().startup())).toEqual(['a']);
    expect(s.store.readState()?.applied).toBeUndefined();
  });

  it('at a reload keeps the pushed version unless the device file changed', () => {
    const s = site();
    s.store.saveVersion(5, s.text(['a', 'b']));
    s.store.writeState({ base: textHash(s.localText), applied: { version: 5, hash: 'x' }, seen: 5 });
    const r = s.remote();
    r.startup();
    expect(points(r.reloaded(s.local, s.localText))).toEqual(['a', 'b']);
    const edited = s.text(['a', 'z']);
    expect(points(r.reloaded(parseConfig(edited, 'l').config as Config, edited))).toEqual(['a', 'z']);
    expect(s.store.readState()).toEqual({ base: textHash(edited), seen: 5 });
  });

  it('keeps the newest versions and those it needs', () => {
    const s = site();
    for (const v of [1, 2, 3, 4, 5]) s.store.saveVersion(v, 'x');
    s.store.prune(2, [1]);
    expect(s.store.versions()).toEqual([1, 4, 5]);
  });
});

describe('remote configuration: a push that cannot be applied', () => {
  it('is rolled back at once and reported, and the next push is taken instead of waiting behind it', async () => {
    const s = site();
    const applied: string[][] = [];
    let fail = true;
    const r = s.remote(s.localText, s.local, async (next) => {
      applied.push(points(next));
      if (fail && points(next).includes('c')) throw new Error('bus line: no source driver could be loaded');
    });
    r.startup();
    r.desired(s.envelope(6, s.text(['a', 'c'])));
    await vi.waitFor(() => expect(r.status.report?.state).toBe('rolled-back'));
    expect(r.status.report).toMatchObject({ version: 6, reason: "it could not be applied (bus line: no source driver could be loaded): back to the device's file" });
    expect(r.status.pending).toBeUndefined();
    expect(applied).toEqual([['a', 'c'], ['a']]);
    expect(s.store.readState()?.pending).toBeUndefined();
    fail = false;
    r.desired(s.envelope(7, s.text(['a', 'b'])));
    await vi.waitFor(() => expect(r.status.report).toMatchObject({ version: 7, state: 'pending' }));
    expect(applied.at(-1)).toEqual(['a', 'b']);
  });
});
