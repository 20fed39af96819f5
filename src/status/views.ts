/** Pure helpers of the snapshot: units and alarm messages from the configuration, bus and URL wording. */
import type { BusConfig, Config, RtuBusConfig } from '../config/schema.js';
import type { AlarmView } from './types.js';

export const alarmKey = (device: string, point: string, alarm: string) => `${device}\u0000${point}\u0000${alarm}`;

export interface Units {
  get(device: string, point: string): string | undefined;
  messages: Map<string, string>;
}

/** Units and alarm messages from the configuration; an aggregate (flow.avg) has its point's unit, a count none. */
export function unitsOf(config: Config): Units {
  const units = new Map<string, string>();
  const messages = new Map<string, string>();
  for (const d of config.devices) {
    for (const p of d.points) {
      if (p.unit) units.set(`${d.id}\u0000${p.id}`, p.unit);
      for (const a of p.alarms ?? []) if (a.message) messages.set(alarmKey(d.id, p.id, a.id ?? a.type), a.message);
    }
  }
  return {
    messages,
    get(device, point) {
      const direct = units.get(`${device}\u0000${point}`);
      if (direct) return direct;
      const dot = point.lastIndexOf('.');
      if (dot < 0 || point.slice(dot + 1) === 'count') return undefined;
      return units.get(`${device}\u0000${point.slice(0, dot)}`);
    },
  };
}

export function withUnit(a: AlarmView, units: Units): AlarmView {
  const unit = units.get(a.device, a.point);
  return unit ? { ...a, unit } : a;
}

/** Where a bus reads, as a technician would check it: "/dev/ttyUSB0 9600 8E1" or "192.168.1.20:502". */
export function describeBus(bus: BusConfig): string {
  if ('host' in bus && bus.host) return `${bus.host}:${bus.port}`;
  const serial = bus as RtuBusConfig;
  return `${serial.port} ${serial.baudRate} ${serial.dataBits}${serial.parity[0]!.toUpperCase()}${serial.stopBits}`;
}

export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1');
}
