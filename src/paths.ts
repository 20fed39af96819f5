import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root folder, found by walking up to its package.json: the same answer whether the code runs
 * from src/ (through tsx) or from the dist/ bundle.
 */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('fieldgate: cannot find its package.json');
    dir = up;
  }
}

export const PACKAGE_ROOT = findRoot();

/** The package version, read once; it goes into the birth message and `--version`. */
export const VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
