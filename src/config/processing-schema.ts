/**
 * Keys of the edge processing every point may carry (Modbus or line): range scaling, sensor-fault detection,
 * report-by-exception, aggregation and alarms. The order they apply in is documented in docs/processing.md.
 */
import { z } from 'zod';

export const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
export const AGGREGATES = ['min', 'max', 'avg', 'count', 'first', 'last', 'sum'] as const;

const alarmId = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must match [A-Za-z0-9_-]+').optional();
const severity = z.enum(SEVERITIES).default('major');
const delayS = z.number().min(0).max(86_400).default(0);

/** Longest shelve an alarm may take: 8 h by default (one shift, as ISA-18.2 expects of shelving), up to 7 days. */
export const SHELVE_MAX_S = 604_800;
export const DEFAULT_SHELVE_MAX_S = 28_800;

/** The ISA-18.2 keys every alarm type has: latching and the bound of its shelving (docs/processing.md). */
const management = {
  /** Stays active once raised until it is acknowledged, even when the condition goes away (a burst must not vanish). */
  latch: z.boolean().default(false),
  /** The longest `durationS` a shelve of this alarm may ask for. */
  shelveMaxS: z.number().int().min(1).max(SHELVE_MAX_S).default(DEFAULT_SHELVE_MAX_S),
};

const levelAlarm = {
  /** Default: the type (low, high); give ids when a point has two alarms of one type (e.g. 0.5 and 1.0 %vol). */
  id: alarmId,
  limit: z.number().finite(),
  /** The value must come back this far past the limit before the alarm clears: no chatter around the limit. */
  hysteresis: z.number().min(0).default(0),
  /** The condition must hold this long before the alarm is raised (and be gone this long before it clears). */
  delayS,
  severity,
  message: z.string().optional(),
  ...management,
};

export const alarmSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('low'), ...levelAlarm }),
  z.strictObject({ type: z.literal('high'), ...levelAlarm }),
  z.strictObject({
    type: z.literal('rateOfChange'),
    id: alarmId,
    /** Change per `perS` seconds that raises the alarm: negative for a fall (a burst: -0.5 bar a minute). */
    limit: z.number().finite().refine((v) => v !== 0, 'must not be 0: negative for a fall, positive for a rise'),
    perS: z.number().positive().max(86_400).default(60),
    delayS,
    severity,
    message: z.string().optional(),
    ...management,
  }),
  z.strictObject({
    type: z.literal('stale'),
    id: alarmId,
    /** Raised when no good sample arrived for this long. */
    afterS: z.number().positive().max(30 * 86_400),
    severity,
    message: z.string().optional(),
    ...management,
  }),
]);

const pair = z.tuple([z.number().finite(), z.number().finite()]);

export const processingKeys = {
  /** Linear map from the raw reading (after scale/offset) to engineering units, e.g. 4-20 mA to 0-10 bar. */
  range: z
    .strictObject({ raw: pair, eng: pair })
    .refine((r) => r.raw[0] !== r.raw[1], { message: 'raw must span a range (low and high differ)', path: ['raw'] })
    .optional(),
  /** namur: NAMUR NE43 on the raw current in mA: < 3.6 or > 21 is a sensor fault (bad), 3.6-3.8 and 20.5-21 uncertain. */
  sensorFault: z.enum(['none', 'namur']).default('none'),
  /** Report only changes larger than this (absolute, or "2%" of the eng range span, or of the value without a range). */
  deadband: z
    .union([z.number().min(0), z.string().regex(/^\s*\d+(\.\d+)?\s*%\s*$/, 'must be a number or a percentage like "2%"')])
    .optional(),
  /** With a deadband: report at least this often even without change. */
  maxIntervalS: z.number().positive().max(86_400).optional(),
  aggregate: z
    .strictObject({
      windowS: z.number().int().min(1).max(86_400),
      functions: z.array(z.enum(AGGREGATES)).min(1),
      /** Keep reporting the raw samples too (after the deadband); false sends only the aggregates. */
      raw: z.boolean().default(true),
    })
    .optional(),
  alarms: z.array(alarmSchema).optional(),
};

/** Keys of a device on a line bus (ASCII sensors). */
export const lineDeviceKeys = {
  /** Sent every pollIntervalMs and the reply parsed; without it the device is listened to. */
  query: z.string().min(1).optional(),
  /** Lines that do not match are not this device's (several devices talking on one line). */
  match: z.string().optional(),
  checksum: z.enum(['none', 'nmea', 'sum8', 'crc16-modbus']).optional(),
  parse: z
    .strictObject({
      regex: z.string().optional(),
      kv: z.strictObject({ pairSeparator: z.string().min(1).default(','), assign: z.string().min(1).default('=') }).optional(),
      csv: z.strictObject({ columns: z.array(z.string().min(1)).min(1), separator: z.string().min(1).default(',') }).optional(),
      json: z.literal(true).optional(),
    })
    .optional(),
};

/** A line bus: ASCII lines from a serial port, or from a serial device server over TCP (host + port). */
export const lineBusKeys = {
  transport: z.literal('line'),
  /** A serial path (/dev/ttyUSB1), or the TCP port with `host`. */
  port: z.union([z.string().min(1), z.number().int().min(1).max(65535)]),
  host: z.string().min(1).optional(),
  baudRate: z.number().int().min(300).max(4_000_000).default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  delimiter: z.string().min(1).default('\r\n'),
  maxLineBytes: z.number().int().min(16).max(65_536).default(512),
  /** How long a queried device has to answer. */
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
};
