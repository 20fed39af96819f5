/**
 * The health rules behind /healthz and the page's banner, on a snapshot. Failing (503) means the gateway is
 * not doing its job: it reads nothing, cannot store, or has not delivered for a long time. A problem with one
 * bus or one device among several is a warning (200): the page and the metrics name it.
 */
import type { HealthReport, StatusSnapshot } from './types.js';

export interface HealthRules {
  /** A device is stale after this many poll intervals without a good response... */
  staleFactor: number;
  /** ...and never sooner than this (listened line sensors talk at their own pace). */
  minStaleMs: number;
  /** The broker link may be down this long before the gateway counts as failing (the outbox holds the data). */
  uplinkDownMs: number;
  /** Outbox use above this share of buffer.maxBytes is a warning: the oldest samples are dropped next. */
  outboxFullRatio: number;
}

export const DEFAULT_HEALTH_RULES: HealthRules = {
  staleFactor: 3,
  minStaleMs: 30_000,
  uplinkDownMs: 10 * 60_000,
  outboxFullRatio: 0.9,
};

export function staleAfterMs(pollIntervalMs: number, rules: HealthRules): number {
  return Math.max(rules.staleFactor * pollIntervalMs, rules.minStaleMs);
}

export function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function evaluateHealth(s: Omit<StatusSnapshot, 'health'>, rules: HealthRules): HealthReport {
  const failing: string[] = [];
  const warnings: string[] = [];

  const unlinked = s.buses.filter((b) => b.link !== 'connected');
  if (s.buses.length > 0 && unlinked.length === s.buses.length) {
    failing.push(`no bus is connected (${unlinked.map((b) => `${b.id}: ${b.link}`).join(', ')})`);
  } else {
    for (const b of unlinked) warnings.push(`bus ${b.id} is ${b.link}`);
  }

  // A device is down when its bus backed it off (it stopped answering) or nothing good came for too long.
  const devices = s.buses.flatMap((b) => b.devices);
  const down = devices.filter((d) => d.stale || d.state === 'failing');
  if (devices.length > 0 && down.length === devices.length) {
    failing.push(`no good reading from any device (${down.map((d) => d.id).join(', ')})`);
  } else {
    for (const d of down) {
      const what = d.state === 'failing' ? 'not answering' : 'no good reading';
      const since = d.lastGoodTs ? ` for ${minutes(s.now - d.lastGoodTs)}` : ' yet';
      warnings.push(`device ${d.id}: ${what}${since}${d.lastError ? `: ${d.lastError}` : ''}`);
    }
  }

  const o = s.outbox;
  if (o.state !== 'ok') failing.push(`outbox cannot store samples: ${o.state}`);
  if (o.maxBytes && o.bytes > rules.outboxFullRatio * o.maxBytes) {
    warnings.push(`outbox ${Math.round((100 * o.bytes) / o.maxBytes)}% full: the oldest samples will be dropped`);
  }

  const u = s.uplink;
  if (u.configured && u.downSince !== null) {
    const downFor = s.now - u.downSince;
    const what = `link to broker down for ${minutes(downFor)}${u.lastError ? `: ${u.lastError}` : ''}`;
    if (downFor > rules.uplinkDownMs) failing.push(what);
    else warnings.push(what);
  }

  return { status: failing.length > 0 ? 'failing' : warnings.length > 0 ? 'degraded' : 'ok', failing, warnings };
}
