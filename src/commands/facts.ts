/** What the command guard reads of the configuration: every device's points, their type, scaling and write rules. */
import type { Config } from '../config/schema.js';
import { deviceKinds } from '../config/kinds.js';
import { resolvedType } from '../config/points.js';
import type { PointFacts } from './policy.js';

export function pointFacts(config: Config): Map<string, Map<string, PointFacts>> {
  const kindOf = deviceKinds(config);
  const out = new Map<string, Map<string, PointFacts>>();
  for (const d of config.devices) {
    const line = kindOf(d) === 'line';
    const points = new Map<string, PointFacts>();
    for (const p of d.points) {
      const f: PointFacts = { type: line ? (p.type ?? 'float64') : resolvedType(p), scale: p.scale, offset: p.offset };
      if (p.length !== undefined) f.length = p.length;
      if (p.unit !== undefined) f.unit = p.unit;
      // Line sensors only talk: a write key there is refused by validation, and never honoured here.
      if (!line && p.write) f.write = p.write;
      points.set(p.id, f);
    }
    out.set(d.id, points);
  }
  return out;
}
