/**
 * How the benchmarks start fieldgate. What ships is the esbuild bundle `npm ci` builds (package.json's "build"
 * script); bin/fieldgate.js runs it only while it is newer than every source file, which a tree being edited
 * does not guarantee. So the benchmarks build the same bundle into bench/.peers/dist and run it directly, and can
 * also run the TypeScript sources through tsx, to show what that costs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = fileURLToPath(new URL('../.peers/dist', import.meta.url));

export type Entry = { label: string; args: string[] };

export const FROM_SOURCE: Entry = { label: 'the sources through tsx', args: ['--import', 'tsx', `${ROOT}src/cli/main.ts`] };

let built: Entry | string | undefined;

/** The bundle as `npm run build` makes it, into a private folder; a reason string when it cannot be built. */
export function bundled(): Entry | string {
  if (built) return built;
  const script = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts?: Record<string, string> }).scripts?.build ?? '';
  const words = script.split(/\s+/);
  if (words[0] !== 'esbuild') return (built = `package.json has no esbuild "build" script (${script || 'none'})`);
  const args = words.slice(1).map((w) => (w.startsWith('--outdir=') ? `--outdir=${OUT}` : w));
  const r = spawnSync(`${ROOT}node_modules/.bin/esbuild`, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) return (built = `esbuild failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
  return (built = { label: 'the bundle `npm run build` makes', args: [`${OUT}/main.js`] });
}

/** The bundle when it builds, else the sources. */
export function shipped(): Entry {
  const b = bundled();
  return typeof b === 'string' ? FROM_SOURCE : b;
}
