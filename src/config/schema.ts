/**
 * The configuration file's schema: one zod schema with every default in it, so the loader, the docs and the
 * daemon agree. Cross-field rules (duplicate ids, overlapping points, unknown buses) live in validate.ts.
 */
import { z } from 'zod';
import { parseDate } from './dates.js';
import { ORDERS, POINT_TYPES } from './modbus-model.js';
import { describe } from './messages.js';
import { lineBusKeys, lineDeviceKeys, processingKeys } from './processing-schema.js';

const id = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must match [A-Za-z0-9_-]+ (letters, digits, _ and -)');
const ms = (def: number) => z.number().int().min(0).max(86_400_000).default(def);

/** The smallest pollIntervalMs: 1 polls a device back to back, as fast as it and its line answer. */
export const MIN_POLL_INTERVAL_MS = 1;

export const gatewaySchema = z.strictObject({
  id,
  dataDir: z.string().min(1).default('./data'),
  /** When sample timestamps are trusted; untrusted ones are flagged, then corrected when trust arrives. */
  clock: z
    .strictObject({
      /** auto: the OS's NTP status, else a date after minValidDate; sync-required: the OS's status only; always: no check. */
      trust: z.enum(['auto', 'always', 'sync-required']).default('auto'),
      /** A step of the wall clock against the monotonic clock larger than this is logged as a jump. */
      jumpThresholdMs: z.number().int().min(100).max(86_400_000).default(2000),
      /** auto without sync information: a clock before this date (UTC) is not trusted. */
      minValidDate: z
        .string()
        .refine((d) => !Number.isNaN(parseDate(d)), 'must be a date YYYY-MM-DD')
        .default('2025-01-01'),
    })
    .prefault({}),
});

/** Settings every Modbus bus shares: timing of transactions and the reconnect loop. */
const busTiming = {
  id,
  /** How long to wait for a response before counting a timeout. */
  timeoutMs: z.number().int().min(10).max(60_000).default(500),
  /** Extra attempts after a timeout or CRC error before the points are marked bad. */
  retries: z.number().int().min(0).max(10).default(2),
  /** Silence between the end of one transaction and the next request; cheap modules need a pause. */
  requestPauseMs: ms(0),
  /** Silence after the port or socket opens before the first request. */
  connectPauseMs: ms(0),
  /** Wait before retrying a request answered with exception 6 (slave device busy). */
  busyRetryMs: ms(100),
  /** Reconnect backoff after the port or peer goes away: doubles from min to max, with jitter. */
  reconnectMinMs: ms(1000),
  reconnectMaxMs: ms(30_000),
  /** Backoff of one unit that stopped answering: doubles from min up to max, reset by its next answer. */
  unitBackoffMinMs: ms(5_000),
  unitBackoffMaxMs: ms(60_000),
};

export const rtuBusSchema = z.strictObject({
  ...busTiming,
  transport: z.literal('rtu'),
  port: z.string().min(1),
  baudRate: z.number().int().min(300).max(4_000_000).default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
});

export const tcpBusSchema = z.strictObject({
  ...busTiming,
  transport: z.enum(['tcp', 'rtu-over-tcp']),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(502),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
});

export const lineBusSchema = z.strictObject({
  ...busTiming,
  ...lineBusKeys,
});

export const busSchema = z.discriminatedUnion('transport', [rtuBusSchema, tcpBusSchema, lineBusSchema]);

/**
 * How a writable point may be written: `write: true` (any value of its type) or these limits, all in engineering
 * units (after scale and offset). Which points may carry it (coils and holding registers, not bits of a register)
 * and whether the limits fit the point's type is checked in validate.ts.
 */
export const writeSpecSchema = z.strictObject(
  {
    min: z.number().finite().optional(),
    max: z.number().finite().optional(),
    /** Allowed values are min + k * step (k * step without min). */
    step: z.number().finite().gt(0, 'must be greater than 0').optional(),
    /** The only values allowed (a pump mode 0/1/2, a coil's true): of the point's type. */
    values: z.array(z.union([z.number().finite(), z.boolean(), z.string()])).min(1).max(256).optional(),
    /** Read the point back after writing it; a different value fails the write. */
    readBack: z.boolean().default(true),
    /** Writes of this point accepted in any 60 s, by the command guard. */
    maxPerMinute: z.number().int().min(1).max(600).default(6),
  },
  {
    error: (issue) =>
      issue.code === 'invalid_type' && issue.input !== undefined
        ? `must be true, false or a mapping of min, max, step, values, readBack, maxPerMinute, got ${describe(issue.input)}`
        : undefined,
  },
);

/**
 * The keys only a Modbus point takes: how it is addressed and decoded. A line point refuses them (raw-rules.ts), so
 * a copied Modbus point on a line bus is reported rather than read from its id.
 */
export const modbusPointKeys = {
  fc: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]).default(3),
  /** Required on Modbus points (0-based protocol address); not used on line points. */
  address: z.number().int().min(0).max(65535).optional(),
  order: z.enum(ORDERS).default('ABCD'),
  /** A single bit (0 = least significant) of a 16-bit register, read as a bool. */
  bit: z.number().int().min(0).max(15).optional(),
  /** String length in registers (two ASCII characters each). */
  length: z.number().int().min(1).max(125).optional(),
  /** Makes a coil (fc 1) or holding register (fc 3) writable from a command; nothing is writable without it. */
  write: z.preprocess((v) => (v === true ? {} : v === false ? undefined : v), writeSpecSchema.optional()),
};

/** The keys only a line point takes. */
export const linePointKeys = {
  /** Line points: the regex group, kv key, csv column or JSON path (a.b.c) holding the value. */
  field: z.string().min(1).optional(),
};

/**
 * One object over both kinds, so a resolved point has one type for every stage; which keys a point may
 * write depends on its bus and is checked on the document (raw-rules.ts), beside this schema. The key order
 * is the one unknown-key messages list.
 */
export const pointSchema = z.strictObject({
  id,
  fc: modbusPointKeys.fc,
  address: modbusPointKeys.address,
  field: linePointKeys.field,
  /** Default: bool for coils and discrete inputs, uint16 for registers; on a line point, a number. */
  type: z.enum(POINT_TYPES).optional(),
  order: modbusPointKeys.order,
  bit: modbusPointKeys.bit,
  length: modbusPointKeys.length,
  write: modbusPointKeys.write,
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
  unit: z.string().optional(),
  description: z.string().optional(),
  ...processingKeys,
});

/** The keys only a Modbus device takes: its unit id and how its points are grouped into requests. */
export const modbusDeviceKeys = {
  /** Modbus unit id (slave address); required on Modbus buses, not used on line buses. */
  unit: z.number().int().min(1, 'unit must be 1-247').max(247, 'unit must be 1-247').optional(),
  /** Largest request, in registers (fc 3/4); some modules reject reads longer than 16-64. */
  maxRegistersPerRequest: z.number().int().min(1).max(125).default(125),
  /** Largest request, in bits (fc 1/2). */
  maxBitsPerRequest: z.number().int().min(1).max(2000).default(2000),
  /** Largest run of unused registers (or bits) the planner reads through to save a request. */
  maxGap: z.number().int().min(0).max(125).default(16),
  /** "optimize": fewest requests; "per-point": one request per point, for fussy devices. */
  requests: z.enum(['optimize', 'per-point']).default('optimize'),
};

/** Flat over both kinds for the same reason as pointSchema; the keys of the other kind are refused in raw-rules.ts. */
export const deviceSchema = z.strictObject({
  id,
  bus: id,
  unit: modbusDeviceKeys.unit,
  pollIntervalMs: z.number().int().min(MIN_POLL_INTERVAL_MS).max(86_400_000).default(1000),
  maxRegistersPerRequest: modbusDeviceKeys.maxRegistersPerRequest,
  maxBitsPerRequest: modbusDeviceKeys.maxBitsPerRequest,
  maxGap: modbusDeviceKeys.maxGap,
  requests: modbusDeviceKeys.requests,
  ...lineDeviceKeys,
  points: z.array(pointSchema).min(1),
});

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** A size as a number of bytes or a string like "512MiB", "64 MB", "1GiB". */
export const byteSize = z.union([z.number().int().min(0), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(v);
  const factor = m ? BYTE_UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || factor === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size: use bytes or a number with KiB, MiB, GiB, kB, MB or GB` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * factor);
});

/** Sparkplug ids are topic levels: no MQTT wildcards, no separators (Sparkplug 3.0 1.4.1.8). */
const sparkplugId = z.string().min(1).max(64).regex(/^[^#+/\s]+$/, 'must not contain #, +, / or spaces');

export const sparkplugSchema = z.strictObject({
  /** The Sparkplug Group ID: the first level under spBv1.0. */
  groupId: sparkplugId,
  /** The Edge Node ID; default: gateway.id. */
  edgeNodeId: sparkplugId.optional(),
  /** Publish births and data only while this host application's STATE is online. */
  primaryHostId: sparkplugId.optional(),
  /** A DCMD has no expiry of its own: it expires this long after its metric timestamp (or its arrival). */
  commandTtlS: z.number().int().min(1).max(3600).default(30),
});

const brokerUrl = z.string().regex(/^(mqtts?|wss?):\/\/[^\s/]+/, 'must be mqtt://HOST[:PORT], mqtts://, ws:// or wss://');

const uplinkKeys = z.strictObject({
  /** mqtt://, mqtts://, ws:// or wss://; or `urls` for more than one broker (exactly one of the two). */
  url: brokerUrl.optional(),
  /** Brokers in order of preference: the first is the primary, the others take over when it cannot be reached. */
  urls: z.array(brokerUrl).min(1).max(8).optional(),
  /** With `urls`: failed dials before the next broker, and how often the primary is checked while another is in use. */
  failover: z
    .strictObject({
      attempts: z.number().int().min(1).max(100).default(3),
      primaryCheckS: z.number().int().min(1).max(86_400).default(60),
    })
    .prefault({}),
  /** Default: fieldgate-{gateway.id}. */
  clientId: z.string().min(1).max(128).optional(),
  username: z.string().optional(),
  /** A file holding the password (first line); FIELDGATE_MQTT_PASSWORD overrides it. */
  passwordFile: z.string().optional(),
  /** CA bundle (PEM) that signs the broker's certificate; default: the system's. */
  ca: z.string().optional(),
  /** Client certificate and key (PEM) for mutual TLS. */
  cert: z.string().optional(),
  key: z.string().optional(),
  /** Skip verifying the broker's certificate. Logged as a warning at every start. */
  insecure: z.boolean().default(false),
  topicPrefix: z.string().regex(/^[^#+\s]+$/, 'must not contain #, + or spaces').default('fieldgate'),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
  /** compact (point indices, ~15 bytes a sample) or json (one self-describing object per sample). */
  format: z.enum(['compact', 'json']).default('compact'),
  /** deflate: telemetry (fieldgate profile) compressed with zlib behind a marker byte (docs/payload.md); about a fifth of compact. */
  compression: z.enum(['none', 'deflate']).default('none'),
  batch: z
    .strictObject({
      maxSamples: z.number().int().min(1).max(50_000).default(500),
      maxDelayMs: z.number().int().min(0).max(600_000).default(1000),
    })
    .prefault({}),
  /** QoS 1 publishes awaiting PUBACK at once; keep at or below the broker's receive maximum (Mosquitto: 20). */
  inflight: z.number().int().min(1).max(1000).default(16),
  /** Cap on the backlog drain for metered links (samples per second); live samples are not capped. 0 = none. */
  maxSamplesPerSecond: z.number().int().min(0).default(0),
  keepaliveS: z.number().int().min(5).max(3600).default(60),
  connectTimeoutMs: z.number().int().min(1000).max(120_000).default(10_000),
  reconnectMinMs: z.number().int().min(100).max(3_600_000).default(1000),
  reconnectMaxMs: z.number().int().min(100).max(3_600_000).default(60_000),
  /** How long SIGTERM waits for the backlog to go out before exiting (committed samples stay in the outbox). */
  shutdownTimeoutMs: z.number().int().min(0).max(120_000).default(5000),
  /** The wire format: fieldgate v1 (docs/payload.md) or Sparkplug B 3.0 (docs/sparkplug.md). */
  profile: z.enum(['fieldgate', 'sparkplug']).default('fieldgate'),
  /** Required with profile: sparkplug. */
  sparkplug: sparkplugSchema.optional(),
  /** A monthly data budget: over its projection, telemetry batches stretch and the backlog drains slower (docs/metered.md). */
  budget: z.strictObject({ monthlyBytes: byteSize.pipe(z.number().min(1024 ** 2, 'must be at least 1 MiB')) }).optional(),
});

/** `url` or `urls`, exactly one; parsed, `url` is the primary either way (`urls` is there only when given). */
export const uplinkSchema = uplinkKeys
  .superRefine((u, ctx) => {
    if (u.url === undefined && u.urls === undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required (or urls: a list of brokers, the primary first)' });
    if (u.url !== undefined && u.urls !== undefined) ctx.addIssue({ code: 'custom', path: ['urls'], message: 'goes instead of url, not with it: put the primary first in urls' });
    if (u.compression !== 'none' && u.profile !== 'fieldgate') ctx.addIssue({ code: 'custom', path: ['compression'], message: 'applies only with profile: fieldgate (Sparkplug payloads are protobuf)' });
    u.urls?.forEach((url, i) => {
      if (/^[A-Za-z][\w+.-]*:\/\/[^/?#\s]*@/.test(url)) ctx.addIssue({ code: 'custom', path: ['urls', i], message: 'must not hold a user name or password (the part before "@"): put the user in uplink.username and the password in the file uplink.passwordFile (or FIELDGATE_MQTT_PASSWORD)' });
    });
  })
  .transform((u) => ({ ...u, url: u.url ?? u.urls![0]! }));

export const bufferSchema = z.strictObject({
  maxBytes: byteSize.pipe(z.number().min(256 * 1024, 'must be at least 256 KiB (the outbox needs room for its schema, WAL and index; MIN_MAX_BYTES in src/outbox/limits.ts)')).default(512 * 1024 ** 2),
  maxAgeHours: z.number().min(1).max(24 * 3650).default(720),
  commitIntervalMs: z.number().int().min(10).max(60_000).default(250),
  /** Samples held in memory while the disk refuses writes (disk full), oldest dropped past this. */
  maxPendingSamples: z.number().int().min(1000).max(10_000_000).default(100_000),
});

/** The local status page, its JSON API, /healthz and /metrics (docs/status.md). */
export const statusSchema = z.strictObject({
  /** false: no page, no /healthz, no /metrics (a gateway watched only through MQTT). */
  enabled: z.boolean().default(true),
  /** HOST:PORT; anything but loopback (127.0.0.1, ::1, localhost) requires a token. */
  listen: z.string().default('127.0.0.1:8080'),
  /** Required as `Authorization: Bearer TOKEN` or `?token=` on every route but /healthz. */
  token: z.string().min(8, 'must be at least 8 characters').optional(),
});

/**
 * Signed, versioned configuration pushed over MQTT (docs/remote-config.md). Without a public key nothing pushed
 * is taken. This block, gateway.id and gateway.dataDir can only be changed in the file on the device.
 */
export const remoteConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** The Ed25519 public key (PEM) whose private half signs the pushed files. */
  publicKeyFile: z.string().min(1).optional(),
  /** A change must prove healthy (uplink connected and acknowledging, the buses that were up still up) within this. */
  confirmS: z.number().int().min(10).max(3600).default(120),
  /** Versions kept on disk for `fieldgate config history` and `rollback`. */
  keep: z.number().int().min(2).max(100).default(10),
});

export const configSchema = z.strictObject({
  gateway: gatewaySchema,
  buses: z.array(busSchema).default([]),
  devices: z.array(deviceSchema).default([]),
  /** Without an uplink the gateway buffers only (a site with no link yet): export with `fieldgate buffer export`. */
  uplink: uplinkSchema.optional(),
  buffer: bufferSchema.prefault({}),
  status: statusSchema.optional(),
  remoteConfig: remoteConfigSchema.optional(),
});

export type Config = z.infer<typeof configSchema>;
export type RemoteConfigSettings = z.infer<typeof remoteConfigSchema>;
export type BusConfig = z.infer<typeof busSchema>;
export type RtuBusConfig = z.infer<typeof rtuBusSchema>;
export type TcpBusConfig = z.infer<typeof tcpBusSchema>;
export type LineBusConfig = z.infer<typeof lineBusSchema>;
export type ModbusBusConfig = RtuBusConfig | TcpBusConfig;
export type DeviceConfig = z.infer<typeof deviceSchema>;
export type PointConfig = z.infer<typeof pointSchema>;
/** A writable point's limits as parsed (`write: true` is all defaults); absent on a point nothing may write. */
export type PointWrite = NonNullable<PointConfig['write']>;
export type UplinkConfig = z.infer<typeof uplinkSchema>;
export type BufferConfig = z.infer<typeof bufferSchema>;
export type StatusConfig = z.infer<typeof statusSchema>;
