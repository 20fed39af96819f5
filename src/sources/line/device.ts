/**
 * A line device compiled once: which lines are its own, and how one of its lines becomes samples (checksum,
 * then text check, then parse, then each point's converter). Pure: no I/O, no clock.
 */
import type { DeviceConfig } from '../../config/schema.js';
import type { Sample } from '../../sample.js';
import { compileChecksum, type ChecksumVerifier } from './checksum.js';
import { compileConverter, compileParser, type LineParser, type PointConverter } from './parse.js';

/** What went wrong with a line, as counted in health() and named in the rate-limited log. */
export type LineErrorKind = 'checksum' | 'binary' | 'parse' | 'field' | 'overlong' | 'timeout' | 'disconnected' | 'unmatched' | 'partial';

export interface LineOutcome {
  samples: Sample[];
  /** The first problem of the line, when any point came out bad. */
  error?: { kind: LineErrorKind; reason: string };
}

export interface CompiledLineDevice {
  id: string;
  pollIntervalMs: number;
  /** Bytes sent every pollIntervalMs; undefined for a device that is listened to. */
  query?: Buffer;
  /** Whether the device names its lines with `match`; without it, it takes lines no one else claims. */
  hasMatch: boolean;
  claims(text: string): boolean;
  decode(line: Buffer, ts: number): LineOutcome;
  /** Every point bad with one reason (a timeout, a lost link, an over-long line). */
  fail(ts: number, reason: string): Sample[];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** C0 controls other than tab, and DEL: never part of an ASCII sensor's line. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** The line as text, or why it is binary noise rather than text. */
export function asText(body: Buffer): { ok: true; text: string } | { ok: false; reason: string } {
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    return { ok: false, reason: `binary noise: not UTF-8 text (${body.length} bytes)` };
  }
  const controls = text.match(CONTROL)?.length ?? 0;
  if (controls > 0) return { ok: false, reason: `binary noise: ${controls} control byte${controls === 1 ? '' : 's'} in ${body.length}` };
  return { ok: true, text };
}

export function compileLineDevice(device: DeviceConfig): CompiledLineDevice {
  const checksum: ChecksumVerifier = compileChecksum(device.checksum);
  const points = device.points.map((p) => ({ id: p.id, convert: compileConverter(p) as PointConverter }));
  const parser: LineParser = compileParser(device.parse ?? {}, device.points.map((p) => p.field ?? p.id));
  const match = device.match !== undefined ? new RegExp(device.match) : undefined;
  const fail = (ts: number, reason: string): Sample[] =>
    points.map((p) => ({ device: device.id, point: p.id, ts, value: null, quality: 'bad' as const, reason }));
  const failed = (ts: number, kind: LineErrorKind, reason: string): LineOutcome => ({ samples: fail(ts, reason), error: { kind, reason } });

  return {
    id: device.id,
    pollIntervalMs: device.pollIntervalMs,
    query: device.query !== undefined ? Buffer.from(device.query, 'utf8') : undefined,
    hasMatch: match !== undefined,
    claims: (text) => match === undefined || match.test(text),
    fail,
    decode(line, ts) {
      const sum = checksum(line);
      if (!sum.ok) {
        // Noise fails any checksum; name it for what it is.
        const raw = asText(line);
        return raw.ok ? failed(ts, 'checksum', sum.reason) : failed(ts, 'binary', raw.reason);
      }
      const text = asText(sum.body);
      if (!text.ok) return failed(ts, 'binary', text.reason);
      const parsed = parser(text.text);
      if (!parsed.ok) return failed(ts, 'parse', parsed.reason);
      const out: LineOutcome = { samples: [] };
      for (const p of points) {
        const r = p.convert(parsed.fields);
        if (r.ok) {
          out.samples.push({ device: device.id, point: p.id, ts, value: r.value, quality: 'good' });
        } else {
          out.samples.push({ device: device.id, point: p.id, ts, value: null, quality: 'bad', reason: r.reason });
          out.error ??= { kind: 'field', reason: `${p.id}: ${r.reason}` };
        }
      }
      return out;
    },
  };
}
