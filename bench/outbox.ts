/**
 * Outbox throughput and size: grouped inserts (100 points at 1 Hz, and bulk 10,000), drain (read + ack, no
 * network), bytes per sample on disk at 1,000,000 samples, peak RSS. A real file in the OS temp directory, so
 * fsync costs are those of that disk. `node --import tsx bench/outbox.ts` prints the table.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Outbox } from '../src/outbox/index.js';
import type { SampleInput } from '../src/outbox/index.js';

const POINTS = 100;
const TOTAL = 1_000_000;

/** One poll cycle of a plausible site: mostly scaled floats, some counters and states, a few bad reads. */
function cycle(t: number): SampleInput[] {
  const out: SampleInput[] = new Array(POINTS);
  for (let p = 0; p < POINTS; p++) {
    const device = `dev${p % 10}`;
    const point = `point${p}`;
    const ts = t * 1000;
    if (p % 20 === 19) out[p] = { device, point, ts, value: null, quality: 'bad', reason: 'timeout after 500 ms' };
    else if (p % 10 === 3) out[p] = { device, point, ts, value: (t + p) % 2 === 0, quality: 'good' };
    else if (p % 10 === 5) out[p] = { device, point, ts, value: t * 3 + p, quality: 'good' };
    else out[p] = { device, point, ts, value: Math.round((20 + 5 * Math.sin(t / 60 + p)) * 100) / 100, quality: 'good' };
  }
  return out;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export async function run(): Promise<string> {
  const rssAtStart = process.memoryUsage().rss / 1024 / 1024;
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-outbox-'));
  const logger = pino({ level: 'silent' });
  const rows: string[] = [];
  try {
    const ob = Outbox.open({ dir, logger, maxBytes: 1024 * 1024 * 1024 });
    let t = 1_700_000_000;

    // 100 points per commit: the steady state of a 100-point site (one fsync per batch here; 4/s in service).
    const smallCommits = 300;
    let start = performance.now();
    for (let i = 0; i < smallCommits; i++) {
      ob.append(cycle(t++));
      ob.commit();
    }
    let secs = (performance.now() - start) / 1000;
    rows.push(`| insert, 100 samples per commit | ${fmt((smallCommits * POINTS) / secs)} samples/s | ${((secs * 1000) / smallCommits).toFixed(2)} ms per commit (fsync included) |`);

    // Bulk: 10,000 samples per commit, up to 1,000,000 stored.
    const bulk = 10_000;
    const bulkCommits = Math.ceil((TOTAL - smallCommits * POINTS) / bulk);
    start = performance.now();
    for (let i = 0; i < bulkCommits; i++) {
      const batch: SampleInput[] = [];
      for (let k = 0; k < bulk / POINTS; k++) batch.push(...cycle(t++));
      ob.append(batch);
      ob.commit();
    }
    secs = (performance.now() - start) / 1000;
    rows.push(`| insert, 10,000 samples per commit | ${fmt((bulkCommits * bulk) / secs)} samples/s | ${((secs * 1000) / bulkCommits).toFixed(1)} ms per commit |`);

    const stats = ob.stats();
    const file = statSync(join(dir, 'outbox.db')).size + statSync(join(dir, 'outbox.db-wal')).size;
    rows.push(`| bytes per sample (${fmt(stats.samples)} stored) | ${(stats.bytes / stats.samples).toFixed(1)} B used | ${(file / stats.samples).toFixed(1)} B of file + WAL |`);

    // Drain: what the uplink does without a network: read a window, ack it.
    const window = 5000;
    let after = 0;
    let drained = 0;
    let ackMs = 0;
    start = performance.now();
    for (;;) {
      const page = ob.read(after, window);
      if (page.length === 0) break;
      after = page[page.length - 1].seq;
      const a = performance.now();
      ob.ack([[page[0].seq, after]]);
      ackMs += performance.now() - a;
      drained += page.length;
    }
    secs = (performance.now() - start) / 1000;
    rows.push(
      `| drain: read ${fmt(window)} + ack, repeated | ${fmt(drained / secs)} samples/s | ${fmt(drained)} samples in ${secs.toFixed(2)} s, ${((ackMs / 1000 / secs) * 100).toFixed(0)} % of it in ack |`,
    );

    // Read alone, on a refilled outbox: the share of the drain spent decoding rows.
    for (let i = 0; i < 20; i++) {
      const batch: SampleInput[] = [];
      for (let k = 0; k < bulk / POINTS; k++) batch.push(...cycle(t++));
      ob.append(batch);
    }
    ob.commit();
    start = performance.now();
    let read = 0;
    after = 0;
    for (;;) {
      const page = ob.read(after, window);
      if (page.length === 0) break;
      after = page[page.length - 1].seq;
      read += page.length;
    }
    secs = (performance.now() - start) / 1000;
    rows.push(`| read only (no ack) | ${fmt(read / secs)} samples/s | ${fmt(read)} samples |`);
    ob.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  rows.push(`| peak RSS (whole process) | ${rss.toFixed(0)} MiB | ${rssAtStart.toFixed(0)} MiB before the outbox opened (Node + tsx) |`);
  return ['| scenario | result | detail |', '| --- | --- | --- |', ...rows].join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
