// Prints the bundle's package.json: the repository's, with only the dependencies dist/ imports at run time
// (esbuild and tsx are build tools), no devDependencies and no scripts (nothing runs at install). A pino
// transport named by dist/ (pino-pretty, for a terminal) is a run-time dependency even if listed as a dev one.
//   node runtime-package.js package.json DIST_DIR
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

const [pkgFile, dist] = process.argv.slice(2);
const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
const imported = new Set();
for (const file of readdirSync(dist).filter((f) => f.endsWith('.js'))) {
  const text = readFileSync(join(dist, file), 'utf8');
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*|\.resolve\(\s*|\btarget:\s*)["']([@a-z][\w@/.-]*)["']/g)) {
    const spec = m[1];
    if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue;
    imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
}
for (const name of imported) {
  if (!(name in (pkg.dependencies ?? {})) && name in (pkg.devDependencies ?? {})) pkg.dependencies[name] = pkg.devDependencies[name];
}
const missing = [...imported].filter((name) => !(name in (pkg.dependencies ?? {})));
if (missing.length > 0) {
  console.error(`runtime-package: dist/ imports ${missing.join(', ')}, not in dependencies`);
  process.exit(1);
}
const dependencies = Object.fromEntries(Object.entries(pkg.dependencies).filter(([name]) => imported.has(name)));
const dropped = Object.keys(pkg.dependencies).filter((name) => !imported.has(name));
console.error(`runtime-package: ${Object.keys(dependencies).length} run-time dependencies; left out ${dropped.join(', ') || 'none'}`);
const out = { name: pkg.name, version: pkg.version, description: pkg.description, type: pkg.type, license: pkg.license, engines: pkg.engines, bin: pkg.bin, dependencies, allowScripts: Object.fromEntries(Object.entries(pkg.allowScripts ?? {}).filter(([name]) => !dropped.includes(name))) };
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
