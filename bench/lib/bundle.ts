/**
 * How the benchmarks start fieldgate. What ships is the esbuild bundle `npm ci` builds (package.json's "build"
 * script); bin/fieldgate.js runs it only while it is newer than every source file, which a tree being edited
 * does not guarantee. So the benchmarks build the same bundle into bench/.peers/dist and run it directly, and can
 * also run the TypeScript sources through tsx, to show what that costs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = fileURLToPath(new URL('../.peers/dist', import.meta.url));

export type Entry = { label: string; args: string[]; env?: Record<string, string> };

export const FROM_SOURCE: Entry = { label: 'the sources through tsx', args: ['--import', 'tsx', `${ROOT}src/cli/main.ts`] };

const built = new Map<string, Entry | string>();
const MAIN = 'src/cli/main.ts';

/**
 * The bundle as `npm run build` makes it, into a private folder; a reason string when it cannot be built. With
 * `entry` (a benchmark's own process, e.g. bench/drain-child.ts) the same build with that entry point, so the
 * figures are those of the code as it ships.
 */
export function bundled(entry = MAIN): Entry | string {
  const known = built.get(entry);
  if (known) return known;
  const script = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts?: Record<string, string> }).scripts?.build ?? '';
  const words = script.split(/\s+/);
  const name = basename(entry).replace(/\.ts$/, '');
  const out = entry === MAIN ? OUT : `${OUT}-${name}`;
  let result: Entry | string;
  if (words[0] !== 'node' || words[1] !== 'scripts/build.mjs') {
    result = `package.json's "build" script is not scripts/build.mjs (${script || 'none'})`;
  } else {
    const r = spawnSync(process.execPath, [...words.slice(1), `--entry=${entry}`, `--outdir=${out}`], { cwd: ROOT, encoding: 'utf8' });
    result =
      r.status !== 0
        ? `the build failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`
        : { label: 'the bundle `npm run build` makes', args: [`${out}/${name}.js`] };
  }
  built.set(entry, result);
  return result;
}

/**
 * The node flags the service runs the daemon with (`node_flags` in scripts/install-service.sh, on the unit's
 * ExecStart), read from there so a benchmark measures what is deployed.
 */
export function serviceNodeFlags(): string[] {
  return serviceScriptWords('node_flags');
}

/** The malloc tuning the service sets in the daemon's environment (`malloc_env` in scripts/install-service.sh). */
export function serviceEnv(): Record<string, string> {
  return Object.fromEntries(serviceScriptWords('malloc_env').map((kv) => kv.split('=') as [string, string]));
}

/** The words of a `name="..."` line of scripts/install-service.sh. */
function serviceScriptWords(name: string): string[] {
  const script = readFileSync(`${ROOT}scripts/install-service.sh`, 'utf8');
  const m = new RegExp(`^${name}="([^"]*)"$`, 'm').exec(script);
  if (!m) throw new Error(`scripts/install-service.sh has no ${name}="..." line`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

/** An environment as a shell would set it: `A=1 B=2`. */
export const envText = (env: Record<string, string>): string => Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');

/** The bundle when it builds, else the sources; with the service's node flags and environment, as the daemon is deployed. */
export function shipped(): Entry {
  const b = bundled();
  const flags = serviceNodeFlags();
  const env = serviceEnv();
  const e = typeof b === 'string' ? FROM_SOURCE : b;
  return { label: `${e.label}, with the service unit's node flags (${flags.join(' ')}) and environment (${envText(env)})`, args: [...flags, ...e.args], env };
}
