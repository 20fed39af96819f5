/**
 * The birth (retained status) of the shipped village configuration as the gateway builds it: every configured
 * point and every aggregate series in the dictionary, with units, types and alarm names.
 */
import { loadConfig } from '../../src/config/load.js';
import { deviceKinds } from '../../src/config/kinds.js';
import { resolvedType } from '../../src/config/points.js';
import { aggregatePoints } from '../../src/processing/index.js';
import { configHash } from '../../src/gateway.js';
import type { Config } from '../../src/config/schema.js';
import type { BirthContext } from '../../src/uplink/profile.js';
import { birthStatus } from '../../src/uplink/messages.js';

export const VILLAGE_CONFIG = 'config/village-water.yaml';

export function villageConfig(): Config {
  return loadConfig(VILLAGE_CONFIG);
}

/** The dictionary in the gateway's order: configured points first, then aggregate series (gateway.ts registerPoints). */
export function birthContext(config: Config, epoch: string): BirthContext {
  const kindOf = deviceKinds(config);
  const points: BirthContext['points'] = [];
  for (const d of config.devices) {
    for (const p of d.points) {
      const alarms = p.alarms?.map((a) => a.id ?? a.type);
      points.push({ index: points.length + 1, device: d.id, point: p.id, unit: p.unit, type: kindOf(d) === 'line' ? (p.type ?? 'float64') : resolvedType(p), ...(alarms?.length ? { alarms } : {}) });
    }
  }
  for (const a of aggregatePoints(config.devices)) points.push({ index: points.length + 1, device: a.device, point: a.point });
  return { version: '0.1.0', configHash: configHash(config), epoch, points };
}

export function villageBirth(epoch: string): string {
  const config = villageConfig();
  return birthStatus({ gatewayId: config.gateway.id, ...birthContext(config, epoch) });
}
