/**
 * The CLI the tests spawn. Through bin/fieldgate.js an edited checkout runs the TypeScript sources through tsx,
 * which compiles them at every start (about a second of CPU per process). So the test run builds the bundle
 * `npm run build` makes, from the sources as they are at its start, into a folder of its own (others may run
 * tests at the same time), and the helpers start that. The globalSetup of vitest.config.ts calls build() and
 * passes the entry to the workers in FIELDGATE_TEST_CLI; without it (another config) they use bin/fieldgate.js.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
export const CLI_ENV = 'FIELDGATE_TEST_CLI';

/** The script to give node to run `fieldgate`: the run's bundle, else the launcher a technician runs. */
export const cliEntry = (): string => process.env[CLI_ENV] ?? join(ROOT, 'bin/fieldgate.js');

/** vitest globalSetup: build the bundle once for the run, remove it at the end. */
export default function setup(): () => void {
  // Under the package, so its external packages resolve from node_modules and PACKAGE_ROOT is found above it.
  const parent = join(ROOT, 'node_modules/.cache');
  mkdirSync(parent, { recursive: true });
  const outdir = mkdtempSync(join(parent, 'fieldgate-test-cli-'));
  chmodSync(outdir, 0o755); // tests run it as nobody too
  // `npm run build` itself, whatever it runs, with the output moved (a later --outdir wins, for esbuild too).
  const r = spawnSync('npm', ['run', '--silent', 'build', '--', `--outdir=${outdir}`], { cwd: ROOT, encoding: 'utf8' });
  const remove = () => rmSync(outdir, { recursive: true, force: true });
  if (r.status !== 0) {
    remove();
    throw new Error(`npm run build failed: ${r.stderr || r.error?.message}`);
  }
  process.env[CLI_ENV] = join(outdir, 'main.js');
  return remove;
}
