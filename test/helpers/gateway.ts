/** Small builders for tests of the acquisition side: a config from an object, a logger that records lines. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { Logger } from '../../src/log.js';
import type { Sample } from '../../src/sample.js';

export function config(raw: unknown): Config {
  return configSchema.parse(raw);
}

export interface RecordingLogger {
  logger: Logger;
  lines: Array<{ level: number; msg: string; [k: string]: unknown }>;
  warnings(match?: RegExp): string[];
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordingLogger['lines'] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return {
    logger,
    lines,
    warnings: (match) => lines.filter((l) => l.level === 40 && (!match || match.test(l.msg))).map((l) => l.msg),
  };
}

/** Collects samples and lets a test wait for a condition on them. */
export class SampleLog {
  readonly all: Sample[] = [];
  sink = (samples: Sample[]): void => {
    this.all.push(...samples);
  };

  of(device: string, point?: string): Sample[] {
    return this.all.filter((s) => s.device === device && (!point || s.point === point));
  }

  async until(cond: (all: Sample[]) => boolean, timeoutMs = 10_000, what = 'samples'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond(this.all)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; have ${this.all.length} samples, last: ${JSON.stringify(this.all.at(-1))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
