/**
 * The end-to-end workload: bench/modbus-tcp.ts's synthetic 1,000-point map (4 units of 250 points), as a
 * fieldgate configuration file and as the request blocks fieldgate's planner makes of it, which the Node-RED flow
 * reads one modbus-read node each, so both poll the same registers in the same requests.
 */
import { stringify } from 'yaml';
import { resolvedType } from '../../src/config/points.js';
import { MIN_POLL_INTERVAL_MS, configSchema, type DeviceConfig, type PointConfig } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { compileDevice } from '../../src/sources/modbus/device.js';
import { ALARM_UNIT, syntheticDevices } from '../modbus-tcp.js';

export const GATEWAY_ID = 'bench';
export const TOPIC_PREFIX = 'fieldgate';
/** The smallest poll interval the configuration schema accepts. */
export const MIN_POLL_MS = MIN_POLL_INTERVAL_MS;

export interface FieldgateFileOptions {
  dataDir: string;
  simPort: number;
  brokerUrl: string;
  pollIntervalMs: number;
  /** One bus (one TCP connection) per device, as separate devices on a plant network are; else one shared bus. */
  busPerDevice: boolean;
  format?: 'compact' | 'json';
  /** Extra uplink keys (e.g. batch: { maxDelayMs: 0 } for the latency scenario). */
  uplink?: Record<string, unknown>;
  /** The alarm benchmark's device: unit ALARM_UNIT on its own connection, one register with a high alarm. */
  alarm?: { pollIntervalMs: number; limit: number };
  /** false: the status page off (status.enabled: false); else it runs as by default, on a random port. */
  statusPage?: boolean;
  /** Several simulators: bus i (one per device) connects to simPorts[i % length] instead of simPort. */
  simPorts?: number[];
  /** Instead of the 1,000-point map: `devices` units of `pointsPerDevice` points each (the 10,000-tag scenario). */
  scale?: { devices: number; pointsPerDevice: number };
}

/** The 10,000-tag scenario (`tags-10k`, and `memory`'s 10,000-point rows): units of points, over simulator processes. */
export const TAGS_10K = { devices: 20, pointsPerDevice: 500, sims: 4 } as const;

/** The alarm benchmark's point: holding register 0 of unit ALARM_UNIT. */
export const ALARM_POINT = { device: 'alarm', point: 'level', unit: ALARM_UNIT, address: 0 } as const;

function devices(busPerDevice: boolean, pollIntervalMs: number, scale?: FieldgateFileOptions['scale']): Record<string, unknown>[] {
  return syntheticDevices('sim', pollIntervalMs, scale?.devices, scale?.pointsPerDevice).map((d) => (busPerDevice ? { ...d, bus: `sim-${String(d.id)}` } : d));
}

/** A checked configuration object for the workload, ready to be written as YAML. */
export function fieldgateConfig(o: FieldgateFileOptions): Record<string, unknown> {
  const devs = devices(o.busPerDevice, o.pollIntervalMs, o.scale);
  if (o.alarm) {
    devs.push({
      id: ALARM_POINT.device,
      bus: 'sim-alarm',
      unit: ALARM_POINT.unit,
      pollIntervalMs: o.alarm.pollIntervalMs,
      points: [{ id: ALARM_POINT.point, fc: 3, address: ALARM_POINT.address, alarms: [{ type: 'high', limit: o.alarm.limit }] }],
    });
  }
  const busIds = [...new Set(devs.map((d) => String(d.bus)))];
  const raw = {
    gateway: { id: GATEWAY_ID, dataDir: o.dataDir },
    buses: busIds.map((id, i) => ({ id, transport: 'tcp', host: '127.0.0.1', port: o.simPorts ? o.simPorts[i % o.simPorts.length] : o.simPort })),
    devices: devs,
    // The page on as it is by default, but on a port of its own: 8080 may be taken on a shared machine.
    status: { enabled: o.statusPage ?? true, listen: '127.0.0.1:0' },
    uplink: {
      url: o.brokerUrl,
      clientId: 'bench-fieldgate',
      topicPrefix: TOPIC_PREFIX,
      format: o.format ?? 'compact',
      // Node-RED's MQTT node retries every 5 s; the same ceiling keeps the outage comparison about loss, not backoff.
      reconnectMaxMs: 5000,
      ...o.uplink,
    },
  };
  const cfg = configSchema.parse(raw);
  const issues = validateConfig(cfg);
  if (issues.length > 0) throw new Error(issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return raw;
}

/**
 * The configuration file's text. A scaled map is written as JSON (which is YAML): 10,000 points in block style are
 * about 433,000 YAML tokens, past the loader's bound of 300,000 (src/config/parse-yaml.ts); as JSON about 255,000.
 */
export const fieldgateYaml = (o: FieldgateFileOptions) => (o.scale ? JSON.stringify(fieldgateConfig(o)) : stringify(fieldgateConfig(o)));

/** How the Node-RED function node turns one point of a block into a value. */
export interface BlockPoint {
  id: string;
  offset: number;
  type: string;
  order: string;
  bit?: number;
  scale: number;
}

export interface Block {
  device: string;
  unit: number;
  fc: 1 | 2 | 3 | 4;
  address: number;
  count: number;
  points: BlockPoint[];
}

/** The planner's request blocks for the workload, with what each point needs to be decoded. */
export function requestBlocks(): Block[] {
  const cfg = configSchema.parse({ gateway: { id: GATEWAY_ID }, buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1' }], devices: devices(false, 1000) });
  return cfg.devices.flatMap((d: DeviceConfig) => {
    const byId = new Map<string, PointConfig>(d.points.map((p) => [p.id, p]));
    return compileDevice(d).requests.map((r) => ({
      device: d.id,
      unit: d.unit!,
      fc: r.fc,
      address: r.address,
      count: r.count,
      points: r.points.map(({ id, offset }) => {
        const p = byId.get(id)!;
        return { id, offset, type: resolvedType(p), order: p.order, bit: p.bit, scale: p.scale };
      }),
    }));
  });
}

export const POINTS = requestBlocks().reduce((n, b) => n + b.points.length, 0);
