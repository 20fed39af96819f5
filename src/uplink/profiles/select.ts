/** The profile the configuration names, with what it needs of the gateway (the outbox state for bdSeq). */
import type { Config } from '../../config/schema.js';
import type { UplinkProfile } from '../profile.js';
import { fieldgateProfile } from './fieldgate/index.js';
import { sparkplugProfile } from './sparkplug/index.js';

/** The state key of Sparkplug's bdSeq in the outbox. */
export const BDSEQ_STATE_KEY = 'sparkplug/bdSeq';

export interface ProfileStore {
  readState(prefix: string): ReadonlyMap<string, string>;
  saveState(entry: { key: string; value: string | null }): void;
}

const isScaled = (p: object) => {
  const s = p as { scale?: number; offset?: number };
  return (s.scale ?? 1) !== 1 || (s.offset ?? 0) !== 0;
};

export function profileFor(config: Config, store: ProfileStore, version: string): UplinkProfile {
  const u = config.uplink!;
  const points = config.devices.flatMap((d) => d.points);
  if (u.profile !== 'sparkplug') {
    const commands = { write: points.some((p) => p.write !== undefined), alarm: points.some((p) => (p.alarms?.length ?? 0) > 0) };
    return fieldgateProfile({ gatewayId: config.gateway.id, topicPrefix: u.topicPrefix, format: u.format, compression: u.compression, commands, remoteConfig: config.remoteConfig?.enabled === true });
  }
  const sp = u.sparkplug!;
  return sparkplugProfile({
    groupId: sp.groupId,
    edgeNodeId: sp.edgeNodeId ?? config.gateway.id,
    primaryHostId: sp.primaryHostId,
    commandTtlS: sp.commandTtlS,
    takesWrites: points.some((p) => p.write !== undefined),
    scaled: new Set(config.devices.flatMap((d) => d.points.filter((p) => isScaled(p)).map((p) => `${d.id}\u0000${p.id}`))),
    version,
    bdSeq: {
      load() {
        const v = Number(store.readState(BDSEQ_STATE_KEY).get(BDSEQ_STATE_KEY));
        return Number.isInteger(v) && v >= 0 && v <= 255 ? v : undefined;
      },
      save: (value) => store.saveState({ key: BDSEQ_STATE_KEY, value: String(value) }),
    },
  });
}
