import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import type { GatewayEvent } from '../events.js';
import { Outbox, OutboxError, type OutboxReader } from '../outbox/index.js';
import { openReader } from '../outbox/open.js';
import { BUDGET_STATE_PREFIX, CAUSES, monthOf, parseMonth, totalOf, type MonthBytes } from '../uplink/budget.js';

function openBuffer(configFile: string): { reader: OutboxReader; dir: string } {
  const config = loadConfig(configFile);
  const dir = config.gateway.dataDir;
  try {
    return { reader: Outbox.openReadOnly(dir), dir };
  } catch (err) {
    const why = err instanceof OutboxError || err instanceof Error ? err.message : String(err);
    throw new UserError(`cannot open the outbox in ${dir}: ${why}`);
  }
}

/** This month's uplink bytes from the outbox state (budget/YYYY-MM), as the running gateway last saved them (every minute). */
function monthBytes(dir: string): MonthBytes {
  const month = monthOf(Date.now());
  let text: string | undefined;
  try {
    const db = openReader(dir);
    try {
      text = (db.prepare('SELECT value FROM state WHERE key = ?').get(BUDGET_STATE_PREFIX + month) as { value?: string } | undefined)?.value;
    } finally {
      db.close();
    }
  } catch {
    // An outbox from before the state table, or none saved yet: nothing counted this month.
  }
  return parseMonth(text, month);
}

function parseTime(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw new UserError(`--${flag} "${raw}" is not a date: use ISO 8601, e.g. 2026-11-28T06:00:00Z`, 2);
  return t;
}

/** An event's facts without its kind (printed as "event"). */
function eventBody(e: GatewayEvent): Record<string, unknown> {
  const { kind: _kind, ...rest } = e;
  return rest;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function register(program: Command): void {
  const buffer = program
    .command('buffer')
    .summary('inspect and export the outbox (works while the daemon runs)')
    .addHelpText(
      'after',
      `
Examples:
  fieldgate buffer stats -c /etc/fieldgate/config.yaml
  fieldgate buffer export -c /etc/fieldgate/config.yaml --from 2026-11-01T00:00:00Z > november.jsonl`,
    );
  buffer
    .command('stats')
    .summary('samples, bytes, oldest and newest time, seq range, dropped counts')
    .requiredOption('-c, --config <file>', 'configuration file (its gateway.dataDir holds the outbox)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  fieldgate buffer stats -c /etc/fieldgate/config.yaml')
    .action((flags: { config: string; json?: boolean }) => {
      const { reader, dir } = openBuffer(flags.config);
      try {
        const s = reader.stats();
        const m = monthBytes(dir);
        const uplinkBytes = { month: m.month, total: totalOf(m), sent: m.sent, received: m.received };
        const out = { dir, epoch: s.epoch, samples: s.samples, events: s.events, bytes: s.bytes, oldest: iso(s.oldestTs), newest: iso(s.newestTs), minSeq: s.minSeq, maxSeq: s.maxSeq, lastSeq: s.lastSeq, dropped: s.dropped, uplinkBytes };
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(out)}\n`);
          return;
        }
        const mib = (s.bytes / 1024 / 1024).toFixed(1);
        const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
        const causes = CAUSES.filter((c) => m.sent[c] + m.received[c] > 0).map((c) => `${c} ${mb(m.sent[c] + m.received[c])}`);
        process.stdout.write(
          [
            `outbox     ${dir} (epoch ${s.epoch})`,
            `samples    ${s.samples} waiting to be sent, ${s.events} events`,
            `bytes      ${mib} MiB`,
            `oldest     ${out.oldest ?? '-'}`,
            `newest     ${out.newest ?? '-'}`,
            `seq        ${s.minSeq ?? '-'} .. ${s.maxSeq ?? '-'} (last assigned ${s.lastSeq})`,
            `dropped    ${s.dropped.maxBytes} over maxBytes, ${s.dropped.maxAge} over maxAgeHours, ${s.dropped.memoryQueueFull} while the disk was full`,
            `uplink     ${mb(uplinkBytes.total)} sent and received in ${m.month} (UTC)${causes.length ? `: ${causes.join(', ')}` : ''}`,
          ].join('\n') + '\n',
        );
      } finally {
        reader.close();
      }
    });
  buffer
    .command('export')
    .summary('print buffered samples as JSON lines (for a gateway that never got a link)')
    .requiredOption('-c, --config <file>', 'configuration file (its gateway.dataDir holds the outbox)')
    .option('--from <iso>', 'samples taken at or after this time')
    .option('--to <iso>', 'samples taken before this time')
    .option('--events', 'also print the stored events not yet sent (alarms, command audit), one line each with "event"')
    .addHelpText('after', '\nExamples:\n  fieldgate buffer export -c /etc/fieldgate/config.yaml --from 2026-11-01T00:00:00Z > november.jsonl\n  fieldgate buffer export -c /etc/fieldgate/config.yaml --events | grep \'"event":"command"\'')
    .action(async (flags: { config: string; from?: string; to?: string; events?: boolean }) => {
      const from = parseTime('from', flags.from);
      const to = parseTime('to', flags.to);
      const { reader } = openBuffer(flags.config);
      const tty = process.stderr.isTTY === true;
      const total = reader.stats().samples;
      let seen = 0;
      let written = 0;
      let events = 0;
      try {
        for (const s of reader.export()) {
          seen++;
          if (tty && seen % 10_000 === 0) process.stderr.write(`\rexporting ${seen}/${total} (${Math.round((seen / Math.max(total, 1)) * 100)}%)`);
          if ((from !== undefined && s.ts < from) || (to !== undefined && s.ts >= to)) continue;
          const line = JSON.stringify({ epoch: reader.epoch, seq: s.seq, device: s.device, point: s.point, ts: new Date(s.ts).toISOString(), value: s.value, quality: s.quality, ...(s.reason ? { reason: s.reason } : {}), ...(s.flags & 1 ? { timeUntrusted: true } : {}) });
          if (!process.stdout.write(`${line}\n`)) await new Promise((r) => process.stdout.once('drain', r));
          written++;
        }
        if (flags.events) {
          // Events leave the outbox once the broker has them: what is here is what has not been sent yet.
          for (let after = 0, batch = reader.readEvents(0, 500); batch.length > 0; batch = reader.readEvents(after, 500)) {
            for (const e of batch) {
              after = e.seq;
              if ((from !== undefined && e.ts < from) || (to !== undefined && e.ts >= to)) continue;
              const line = JSON.stringify({ epoch: reader.epoch, seq: e.seq, ts: new Date(e.ts).toISOString(), event: e.event.kind, ...eventBody(e.event) });
              if (!process.stdout.write(`${line}\n`)) await new Promise((r) => process.stdout.once('drain', r));
              events++;
            }
          }
        }
      } finally {
        reader.close();
        if (tty) process.stderr.write('\r\x1b[K');
      }
      process.stderr.write(`exported ${written} samples${flags.events ? `, ${events} events` : ''}\n`);
    });
}
