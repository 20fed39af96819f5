#!/usr/bin/env node
// The app's bundle (dist/ by default; `--outdir=DIR`, `--entry=FILE` for another entry point): the one build used
// by `npm run build`, the benchmarks and the Pi bundle. Pure-JS dependencies are bundled in with their comments and
// whitespace removed, and zod with English messages only: V8 keeps the source text of every loaded
// module, so this is memory the daemon holds for its whole life (docs/BENCHMARKS.md, memory). The app's own code
// stays as written, so its stack traces keep their lines. Native addons and pino (whose transports load files by
// path) stay in node_modules.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { build, transform } from 'esbuild';

// The last one wins, as with esbuild's own flags (`npm run build -- --outdir=DIR` after a script's own).
const arg = (name, fallback) => process.argv.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

/** What stays in node_modules (the Pi bundle's runtime package.json lists what dist/ still imports). */
const EXTERNAL = ['better-sqlite3', 'serialport', '@serialport/*', 'pino', 'pino-pretty', 'aedes'];

const lean = {
  name: 'lean-dependencies',
  setup(b) {
    // ws (mqtt.js's WebSocket transport) tries these optional native helpers and goes on without them when the
    // require throws; they are not installed, so the bundle must not import them.
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: 'absent' }));
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({ contents: `throw new Error('${args.path} is not installed');`, loader: 'js' }));
    // Messages are English only (config/messages.ts words them); the other locales are never configured.
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.includes('/node_modules/zod/') ? { path: join(args.resolveDir, args.path), namespace: 'zod-en' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
    b.onLoad({ filter: /\/node_modules\/.*\.[cm]?js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const { code } = await transform(source, { loader: 'js', minifyWhitespace: true, minifySyntax: true, legalComments: 'none' });
      return { contents: code, loader: 'js' };
    });
  },
};

const outdir = arg('outdir', 'dist');
// The last build's chunks are left in place: a daemon running from this folder may still import one lazily (a
// driver at a reload). The Pi bundle builds into a fresh folder, so it ships only this build's.

await build({
  entryPoints: [arg('entry', 'src/cli/main.ts')],
  outdir,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: EXTERNAL,
  plugins: [lean],
  // Bundled CommonJS modules call require() for Node's built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as __fgRequire } from 'node:module'; const require = __fgRequire(import.meta.url);" },
  logLevel: 'warning',
});
