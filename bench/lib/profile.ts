/**
 * A summary of a V8 .cpuprofile (node --cpu-prof): the share of samples that were idle, garbage collection or
 * code, and the functions and packages with the most self time, so a benchmark can say what limits the gateway.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface ProfileSummary {
  seconds: number;
  /** Share of samples, %: idle (waiting for I/O or timers), GC, the rest. */
  idlePct: number;
  gcPct: number;
  /** [label, % of all samples] by self time, largest first. */
  functions: [string, number][];
  packages: [string, number][];
}

/** Where a frame's code lives: a package under node_modules, fieldgate's own src/ folder, or Node itself. */
function owner(url: string): string {
  if (!url) return '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  const src = /\/src\/([^/]+)/.exec(url);
  if (src) return `fieldgate src/${src[1]}`;
  if (url.startsWith('node:')) return 'node core';
  return url.split('/').slice(-2).join('/');
}

export function summarize(file: string, top = 12): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const hits = new Map<number, number>();
  for (const id of p.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const total = p.samples.length || 1;
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, n] of hits) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') idle += n;
    else if (f.functionName === '(garbage collector)') gc += n;
    const label = f.url ? `${f.functionName || '(anonymous)'} (${owner(f.url)})` : f.functionName || '(anonymous)';
    fn.set(label, (fn.get(label) ?? 0) + n);
    if (f.functionName !== '(idle)') pkg.set(owner(f.url), (pkg.get(owner(f.url)) ?? 0) + n);
  }
  const pct = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]): [string, number] => [k, (v / total) * 100]);
  return { seconds: (p.endTime - p.startTime) / 1e6, idlePct: (idle / total) * 100, gcPct: (gc / total) * 100, functions: pct(fn), packages: pct(pkg) };
}
