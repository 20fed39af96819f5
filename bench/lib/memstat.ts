/**
 * Where a process's memory goes, from outside it: /proc/PID/smaps summed by what each mapping is (the node binary,
 * better-sqlite3's addon, other shared libraries, malloc's brk heap, anonymous mappings: V8's heap spaces, large
 * malloc blocks and thread stacks), and V8's own view (heap used, total, external, array buffers, per space) written
 * every second by a preload module given to node with --import, so the gateway's code is unchanged.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmapsPart {
  label: string;
  rssKiB: number;
  anonKiB: number;
}

/** Rss and Anonymous of every mapping of the process, summed by kind. */
export function smapsBreakdown(pid: number): SmapsPart[] {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  const parts = new Map<string, SmapsPart>();
  let label = '';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1]!.trim();
      label =
        path === '' ? 'anonymous mappings (V8 heap spaces, large malloc blocks, thread stacks)'
        : path === '[heap]' ? "malloc's brk heap (small allocations: SQLite's page cache, addon buffers)"
        : path === '[stack]' ? 'main stack'
        : path.startsWith('[') ? 'kernel mappings (vdso, vvar)'
        : path === exe || path.endsWith('/node') ? 'node binary (code and data)'
        : path.endsWith('better_sqlite3.node') ? "better-sqlite3's addon (SQLite's code)"
        : /\.so(\.|$)/.test(path) ? 'shared libraries (libc, libstdc++, ...)'
        : 'other files';
      if (!parts.has(label)) parts.set(label, { label, rssKiB: 0, anonKiB: 0 });
      continue;
    }
    const m = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (m && label) {
      const p = parts.get(label)!;
      if (m[1] === 'Rss') p.rssKiB += Number(m[2]);
      else p.anonKiB += Number(m[2]);
    }
  }
  return [...parts.values()].filter((p) => p.rssKiB > 0).sort((a, b) => b.rssKiB - a.rssKiB);
}

export interface V8Stat {
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, { used: number; size: number }>;
}

/** Node flags that make the process write its V8Stat to `file` every second, and a reader for it. */
export function v8Stats(): { nodeArgs: string[]; read(): V8Stat | undefined; remove(): void } {
  const file = join(tmpdir(), `fieldgate-bench-v8-${process.pid}-${Date.now()}.json`);
  const code = [
    "import v8 from 'node:v8';",
    "import { writeFileSync } from 'node:fs';",
    'const w = () => { const m = process.memoryUsage(); const spaces = {};',
    'for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = { used: s.space_used_size, size: s.space_size };',
    `writeFileSync(${JSON.stringify(file)}, JSON.stringify({ at: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces })); };`,
    'setInterval(w, 1000).unref();',
  ].join(' ');
  return {
    nodeArgs: [`--import=data:text/javascript,${encodeURIComponent(code)}`],
    read() {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as V8Stat;
      } catch {
        return undefined;
      }
    },
    remove: () => rmSync(file, { force: true }),
  };
}
