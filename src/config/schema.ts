/**
 * The configuration file's schema: one zod schema with every default in it, so the loader, the docs and the
 * daemon agree. Cross-field rules (duplicate ids, overlapping points, unknown buses) live in validate.ts.
 */
import { z } from 'zod';
import { ORDERS, POINT_TYPES } from '../sources/modbus/types.js';

const id = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must match [A-Za-z0-9_-]+ (letters, digits, _ and -)');
const ms = (def: number) => z.number().int().min(0).max(86_400_000).default(def);

export const gatewaySchema = z.strictObject({
  id,
  dataDir: z.string().min(1).default('./data'),
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

export const busSchema = z.discriminatedUnion('transport', [rtuBusSchema, tcpBusSchema]);

export const pointSchema = z.strictObject({
  id,
  fc: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]).default(3),
  address: z.number().int().min(0).max(65535),
  /** Default: bool for coils and discrete inputs, uint16 for registers. */
  type: z.enum(POINT_TYPES).optional(),
  order: z.enum(ORDERS).default('ABCD'),
  /** A single bit (0 = least significant) of a 16-bit register, read as a bool. */
  bit: z.number().int().min(0).max(15).optional(),
  /** String length in registers (two ASCII characters each). */
  length: z.number().int().min(1).max(125).optional(),
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
  unit: z.string().optional(),
  description: z.string().optional(),
});

export const deviceSchema = z.strictObject({
  id,
  bus: id,
  unit: z.number().int().min(1, 'unit must be 1-247').max(247, 'unit must be 1-247'),
  pollIntervalMs: z.number().int().min(10).max(86_400_000).default(1000),
  /** Largest request, in registers (fc 3/4); some modules reject reads longer than 16-64. */
  maxRegistersPerRequest: z.number().int().min(1).max(125).default(125),
  /** Largest request, in bits (fc 1/2). */
  maxBitsPerRequest: z.number().int().min(1).max(2000).default(2000),
  /** Largest run of unused registers (or bits) the planner reads through to save a request. */
  maxGap: z.number().int().min(0).max(125).default(16),
  /** "optimize": fewest requests; "per-point": one request per point, for fussy devices. */
  requests: z.enum(['optimize', 'per-point']).default('optimize'),
  points: z.array(pointSchema).min(1),
});

export const configSchema = z.strictObject({
  gateway: gatewaySchema,
  buses: z.array(busSchema).default([]),
  devices: z.array(deviceSchema).default([]),
});

export type Config = z.infer<typeof configSchema>;
export type BusConfig = z.infer<typeof busSchema>;
export type RtuBusConfig = z.infer<typeof rtuBusSchema>;
export type TcpBusConfig = z.infer<typeof tcpBusSchema>;
export type DeviceConfig = z.infer<typeof deviceSchema>;
export type PointConfig = z.infer<typeof pointSchema>;
