import { createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fieldgate } from './helpers/cli.js';
import { tempDir } from './helpers/peers.js';

describe('fieldgate config keygen and sign', () => {
  it('makes a key pair, signs a file the public key verifies, and refuses to overwrite keys or sign a broken file', async () => {
    const dir = tempDir('cli-config');
    const k = await fieldgate(['config', 'keygen', '--out', dir]);
    expect(k.code, k.stderr).toBe(0);
    expect(statSync(join(dir, 'config.key')).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir, 'config.pub'))).toBe(true);
    expect((await fieldgate(['config', 'keygen', '--out', dir])).code).toBe(2);

    const file = join(dir, 'site.yaml');
    writeFileSync(file, 'gateway: { id: g1 }\n');
    const s = await fieldgate(['config', 'sign', file, '--key', join(dir, 'config.key'), '--config-version', '42']);
    expect(s.code, s.stderr).toBe(0);
    const env = JSON.parse(s.stdout);
    expect(env).toMatchObject({ v: 1, version: 42, config: 'gateway: { id: g1 }\n' });
    const pub = createPublicKey(readFileSync(join(dir, 'config.pub')));
    expect(verify(null, Buffer.from(env.config), pub, Buffer.from(env.sig, 'base64'))).toBe(true);

    writeFileSync(file, 'gateway: { id: "bad id" }\n');
    const bad = await fieldgate(['config', 'sign', file, '--key', join(dir, 'config.key')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/gateway\.id/);
    const wrongKey = await fieldgate(['config', 'sign', file, '--key', join(dir, 'config.pub')]);
    expect(wrongKey.code).toBe(2);
  });
});
