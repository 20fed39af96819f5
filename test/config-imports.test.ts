/**
 * The configuration is the first stage: every other stage reads its types, so it must not import them back
 * (a cycle, and a schema that changes when a driver does). Only its own files, ../errors.js and packages.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = new URL('../src/config/', import.meta.url).pathname;

function sources(at: string): string[] {
  return readdirSync(at, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(at, e.name)) : e.name.endsWith('.ts') ? [join(at, e.name)] : []));
}

/** Every module specifier of static imports, re-exports and dynamic imports. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

describe('src/config imports', () => {
  it('finds the imports it checks', () => {
    expect(specifiers("import { z } from 'zod';\nimport type { A } from '../sources/x.js';\nexport { b } from './b.js';\nconst m = await import('../c.js');")).toEqual(['zod', '../sources/x.js', './b.js', '../c.js']);
  });

  it('imports nothing from other stages: only src/config, ../errors.js and packages', () => {
    const files = sources(dir);
    expect(files.length).toBeGreaterThan(5);
    const outside = files.flatMap((file) =>
      specifiers(readFileSync(file, 'utf8'))
        .filter((s) => s.startsWith('.'))
        .filter((s) => {
          const target = join(file, '..', s);
          return !target.startsWith(dir) && target !== join(dir, '..', 'errors.js');
        })
        .map((s) => `${file.slice(dir.length)}: ${s}`),
    );
    expect(outside).toEqual([]);
  });
});
