/**
 * CPU and memory of other processes, read from /proc (Linux): utime + stime from /proc/PID/stat, VmRSS and VmHWM
 * from /proc/PID/status. A sampler keeps an RSS series so a run can show growth, not only a peak.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/** User + system CPU seconds of a process; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export const rssMiB = (pid: number) => (statusKiB(pid, 'VmRSS') ?? NaN) / 1024;
export const peakRssMiB = (pid: number) => (statusKiB(pid, 'VmHWM') ?? NaN) / 1024;
/** Resident memory of the process's own (anonymous) pages: the heap and buffers, not the mapped binary and libraries. */
export const anonRssMiB = (pid: number) => (statusKiB(pid, 'RssAnon') ?? NaN) / 1024;

/** CPU time of several processes at one instant, so a later reading gives each one's share of a core. */
export class CpuMark {
  private readonly at = performance.now();
  private readonly start: Map<number, number | undefined>;

  constructor(private readonly pids: readonly number[]) {
    this.start = new Map(pids.map((p) => [p, p === process.pid ? selfCpu() : cpuSeconds(p)]));
  }

  /** Percent of one core each process used since the mark (NaN for a process that is gone). */
  percent(): Map<number, number> {
    const secs = (performance.now() - this.at) / 1000;
    return new Map(
      this.pids.map((p) => {
        const now = p === process.pid ? selfCpu() : cpuSeconds(p);
        const was = this.start.get(p);
        return [p, now === undefined || was === undefined ? NaN : ((now - was) / secs) * 100];
      }),
    );
  }

  seconds(): number {
    return (performance.now() - this.at) / 1000;
  }
}

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** RSS of one process every intervalMs until stopped. */
export class RssSampler {
  readonly series: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, intervalMs = 1000) {
    this.take();
    this.timer = setInterval(() => this.take(), intervalMs);
  }

  private take(): void {
    const v = rssMiB(this.pid);
    if (Number.isFinite(v)) this.series.push(v);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  mean(from = 0, to = this.series.length): number {
    const part = this.series.slice(from, to);
    return part.reduce((a, b) => a + b, 0) / Math.max(1, part.length);
  }

  max(): number {
    return Math.max(...this.series);
  }
}
