/**
 * Telemetry payloads, version 1 (docs/payload.md, docs/telemetry.schema.json). Two formats:
 * - compact (default): points by their index in the gateway's point dictionary, sequence numbers implied by
 *   position, timestamps as deltas: about 15 bytes a sample where one JSON object per reading costs over 100.
 * - json: one self-describing object per sample, for consumers that want no dictionary.
 * Both carry the gateway id, the outbox epoch and every sample's seq, so a consumer can tell loss from
 * duplicates from the payload alone. Pure code: no I/O.
 */
import type { Quality, SampleValue } from '../sample.js';
import { telemetryText } from './compress.js';

export const PAYLOAD_VERSION = 1;
export type PayloadFormat = 'compact' | 'json';

/** Flag bits carried per sample (also stored in the outbox). */
export const FLAG_TIME_UNTRUSTED = 1;

/** A sample as the uplink publishes it: committed, with its seq and its dictionary index. */
export interface OutgoingSample {
  seq: number;
  pointIndex: number;
  device: string;
  point: string;
  ts: number;
  value: SampleValue;
  quality: Quality;
  reason?: string;
  flags: number;
}

export interface DecodedSample {
  gateway: string;
  epoch: string;
  seq: number;
  device: string;
  point: string;
  ts: number;
  value: SampleValue;
  quality: Quality;
  reason?: string;
  timeUntrusted?: boolean;
}

export interface DictionaryEntry {
  index: number;
  device: string;
  point: string;
  unit?: string;
  type?: string;
  /** The point's alarm ids (Sparkplug lists one Boolean metric per alarm in the device's birth). */
  alarms?: string[];
  /** The engineering range of a point with a `range` map: Sparkplug's engLow / engHigh. */
  engRange?: [number, number];
  /** The point has `write:` (Sparkplug's readOnly false: a host may send a DCMD). */
  writable?: boolean;
}

export class PayloadError extends Error {
  override name = 'PayloadError';
}

const QUALITY_CODE: Record<Quality, number> = { good: 0, uncertain: 1, bad: 2 };
const QUALITY_BY_CODE: Quality[] = ['good', 'uncertain', 'bad'];

/**
 * Compact v1: {"v":1,"g":gateway,"ep":epoch,"s":firstSeq,"t":firstTs,"d":[[index,dt,value,f?,reason?],...]}.
 * Row k has seq s+k (the uplink splits batches at gaps); dt is the ms since the previous row (the first: since t);
 * f packs quality (bits 0-1: 0 good, 1 uncertain, 2 bad) and bit 2 "time untrusted"; omitted when 0.
 */
export function encodeCompact(gateway: string, epoch: string, samples: readonly OutgoingSample[]): string {
  if (samples.length === 0) throw new PayloadError('empty batch');
  const rows = compactRows(samples, 0, samples.length, (s) => s.pointIndex);
  return compactMessage(gateway, epoch, samples[0]!, rows);
}

/** What a compact row is made of: an outgoing sample less its names. */
export type CompactSource = Pick<OutgoingSample, 'seq' | 'ts' | 'value' | 'quality' | 'reason' | 'flags'>;

/**
 * encodeCompact for samples[start, end) as the outbox stores them, `series` being the dictionary index: the
 * uplink's drain path, with no object or slice per sample.
 */
export function encodeCompactSeries(
  gateway: string,
  epoch: string,
  samples: ReadonlyArray<CompactSource & { series: number }>,
  start = 0,
  end = samples.length,
): string {
  if (end <= start) throw new PayloadError('empty batch');
  return compactMessage(gateway, epoch, samples[start]!, compactRows(samples, start, end, (s) => s.series));
}

function compactMessage(gateway: string, epoch: string, first: CompactSource, rows: unknown[][]): string {
  // Timestamps go out as whole milliseconds (a retimed sample can carry a fraction): the format says integers.
  return `{"v":${PAYLOAD_VERSION},"g":${JSON.stringify(gateway)},"ep":${JSON.stringify(epoch)},"s":${first.seq},"t":${Math.round(first.ts)},"d":${JSON.stringify(rows)}}`;
}

/**
 * The rows of "d", for one JSON.stringify per message (same text as a JSON.stringify per value: NaN and the
 * infinities become null). It writes numbers straight into its output; a string per decimal value went through
 * V8's number-to-string cache, which kept them alive into the old generation (+12 MB of heap per million samples).
 */
function compactRows<T extends CompactSource>(samples: readonly T[], start: number, end: number, indexOf: (s: T) => number): unknown[][] {
  const first = samples[start]!;
  let prevTs = Math.round(first.ts);
  const rows: unknown[][] = new Array(end - start);
  for (let i = start; i < end; i++) {
    const s = samples[i]!;
    if (s.seq !== first.seq + (i - start)) throw new PayloadError(`batch is not contiguous at seq ${s.seq}`);
    const f = QUALITY_CODE[s.quality] | ((s.flags & FLAG_TIME_UNTRUSTED) << 2);
    const value = s.value ?? null;
    const ts = Math.round(s.ts);
    const dt = ts - prevTs;
    rows[i - start] = s.reason ? [indexOf(s), dt, value, f, s.reason] : f !== 0 ? [indexOf(s), dt, value, f] : [indexOf(s), dt, value];
    prevTs = ts;
  }
  return rows;
}

/** json v1: {"v":1,"format":"json","g","ep","samples":[{"seq","device","point","ts","value","quality","reason"?,"timeUntrusted"?}]} */
export function encodeJson(gateway: string, epoch: string, samples: readonly OutgoingSample[]): string {
  return JSON.stringify({
    v: PAYLOAD_VERSION,
    format: 'json',
    g: gateway,
    ep: epoch,
    samples: samples.map((s) => ({
      seq: s.seq,
      device: s.device,
      point: s.point,
      ts: Math.round(s.ts),
      value: s.value ?? null,
      quality: s.quality,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.flags & FLAG_TIME_UNTRUSTED ? { timeUntrusted: true } : {}),
    })),
  });
}

export function encodeTelemetry(format: PayloadFormat, gateway: string, epoch: string, samples: readonly OutgoingSample[]): string {
  return format === 'compact' ? encodeCompact(gateway, epoch, samples) : encodeJson(gateway, epoch, samples);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isValue(x: unknown): x is SampleValue {
  return x === null || typeof x === 'boolean' || typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x));
}

/**
 * Decodes either format, compressed or not (a Buffer whose first byte is the deflate marker, compress.ts). `lookup` resolves a compact point index (from the dictionary the gateway publishes
 * retained in the status birth on {prefix}/{gateway}/status); an unknown index decodes as point "#N" rather than failing.
 * Anything malformed throws PayloadError naming the field.
 */
export function decodeTelemetry(payload: string | Uint8Array, lookup: (index: number) => DictionaryEntry | undefined = () => undefined): DecodedSample[] {
  const text = telemetryText(payload);
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new PayloadError('not JSON');
  }
  if (!isObject(msg)) throw new PayloadError('not a JSON object');
  if (msg.v !== PAYLOAD_VERSION) throw new PayloadError(`unsupported payload version ${JSON.stringify(msg.v)}`);
  const gateway = msg.g;
  const epoch = msg.ep;
  if (typeof gateway !== 'string') throw new PayloadError('"g" (gateway) must be a string');
  if (typeof epoch !== 'string') throw new PayloadError('"ep" (epoch) must be a string');
  if (msg.format === 'json') {
    if (!Array.isArray(msg.samples)) throw new PayloadError('"samples" must be an array');
    return msg.samples.map((s, i) => {
      if (!isObject(s)) throw new PayloadError(`samples[${i}] must be an object`);
      const { seq, device, point, ts, value, quality, reason } = s;
      if (!Number.isSafeInteger(seq) || typeof device !== 'string' || typeof point !== 'string' || !Number.isSafeInteger(ts) || !isValue(value)) {
        throw new PayloadError(`samples[${i}]: seq, device, point, ts and value are required`);
      }
      if (!QUALITY_BY_CODE.includes(quality as Quality)) throw new PayloadError(`samples[${i}].quality must be good, uncertain or bad`);
      if ((seq as number) < 0) throw new PayloadError(`samples[${i}].seq must not be negative`);
      if (reason !== undefined && typeof reason !== 'string') throw new PayloadError(`samples[${i}].reason must be a string`);
      return {
        gateway, epoch, seq: seq as number, device, point, ts: ts as number, value, quality: quality as Quality,
        ...(typeof reason === 'string' ? { reason } : {}),
        ...(s.timeUntrusted === true ? { timeUntrusted: true } : {}),
      };
    });
  }
  const { s: first, t: t0, d } = msg;
  if (!Number.isSafeInteger(first) || (first as number) < 0) throw new PayloadError('"s" (first seq) must be a non-negative integer');
  if (!Number.isSafeInteger(t0)) throw new PayloadError('"t" (first timestamp) must be an integer');
  if (!Array.isArray(d)) throw new PayloadError('"d" must be an array');
  let ts = t0 as number;
  return d.map((row, k) => {
    if (!Array.isArray(row) || row.length < 3 || row.length > 5) throw new PayloadError(`d[${k}] must be [index, dt, value, flags?, reason?]`);
    const [index, dt, value, f = 0, reason] = row as unknown[];
    if (!Number.isSafeInteger(index) || (index as number) < 0) throw new PayloadError(`d[${k}][0] (point index) must be a non-negative integer`);
    if (!Number.isSafeInteger(dt)) throw new PayloadError(`d[${k}][1] (dt) must be an integer`);
    if (!isValue(value)) throw new PayloadError(`d[${k}][2] (value) must be a number, bool, string or null`);
    if (!Number.isSafeInteger(f) || (f as number) < 0 || ((f as number) & 3) === 3) throw new PayloadError(`d[${k}][3] (flags) is invalid`);
    if (reason !== undefined && typeof reason !== 'string') throw new PayloadError(`d[${k}][4] (reason) must be a string`);
    ts += dt as number;
    if (!Number.isSafeInteger(ts)) throw new PayloadError(`d[${k}][1] (dt) takes the timestamp out of range`);
    const entry = lookup(index as number);
    return {
      gateway, epoch, seq: (first as number) + k,
      device: entry?.device ?? '?', point: entry?.point ?? `#${index as number}`,
      ts, value, quality: QUALITY_BY_CODE[(f as number) & 3]!,
      ...(reason !== undefined ? { reason: reason as string } : {}),
      ...((f as number) & 4 ? { timeUntrusted: true } : {}),
    };
  });
}
