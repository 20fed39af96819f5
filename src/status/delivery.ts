/**
 * The page's "Sending data" and "Stored on the gateway" cards: the broker link as the session reports it (which
 * broker, the month's bytes against the budget), and the outbox with its drain rate over the last minute, from counters sampled about once a second.
 */
import type { OutboxView, StatusGateway, UplinkBytesView, UplinkView } from './types.js';
import type { UplinkStats } from '../uplink/uplink.js';
import { withoutCredentials } from './views.js';

/** Acknowledged and waiting samples at one moment: a drain rate is the difference of two. */
export interface RateSample {
  t: number;
  acked: number;
  samples: number;
}

export const RATE_WINDOW_MS = 60_000;

/** Appends a sample to `window` (at most one a second), dropping those older than the rate window; a new Uplink (acked went back) starts over. */
export function sampleRate(window: RateSample[], sample: RateSample): RateSample[] {
  const last = window[window.length - 1];
  if (last && sample.acked < last.acked) window = [];
  else if (last && sample.t - last.t < 1000) return window;
  window.push(sample);
  while (window.length > 2 && window[1]!.t <= sample.t - RATE_WINDOW_MS) window.shift();
  return window;
}

/** The link: `downSince` and `lastError` are what the status state follows of the session's events. */
export function uplinkView(gateway: StatusGateway, downSince: number | null, lastError: string | undefined): UplinkView {
  const cfg = gateway.config.uplink;
  const session = gateway.session;
  const stats = gateway.uplink?.stats;
  return {
    configured: cfg !== undefined,
    ...(cfg ? { url: withoutCredentials(cfg.url) } : {}),
    state: session?.currentState ?? (cfg ? 'disconnected' : 'none'),
    connectedSince: session?.connectedSince ?? null,
    downSince: cfg ? downSince : null,
    ...(lastError && downSince !== null ? { lastError } : {}),
    lastPubackAt: stats?.lastPubackAt ?? null,
    lastPubackMs: stats?.lastPubackMs ?? null,
    reconnects: session?.reconnects ?? 0,
    published: stats?.published ?? 0,
    acked: stats?.acked ?? 0,
    inflight: stats?.inflight ?? 0,
    ...(cfg && stats?.broker !== undefined ? { broker: { url: stats.broker, index: stats.brokerIndex ?? 0, count: cfg.urls?.length ?? 1, switches: stats.brokerSwitches ?? 0 } } : {}),
    ...(stats?.bytes ? { bytes: bytesView(stats.bytes) } : {}),
  };
}

/** The month's bytes as the page and /metrics show them. */
export function bytesView(b: NonNullable<UplinkStats['bytes']>): UplinkBytesView {
  return { month: b.month, sent: { ...b.sent }, received: { ...b.received }, total: b.total, projected: b.projected, monthlyBytes: b.monthlyBytes ?? null, stretch: b.stretch };
}
/** The outbox, with the drain rate and the time to empty measured over `rate` (two samples at least 2 s apart). */
export function outboxView(gateway: StatusGateway, rate: readonly RateSample[]): OutboxView {
  const s = gateway.outbox.stats();
  let drainPerS: number | null = null;
  let etaS: number | null = null;
  const first = rate[0];
  const last = rate[rate.length - 1];
  if (first && last && last.t - first.t >= 2000) {
    const dt = (last.t - first.t) / 1000;
    drainPerS = gateway.uplink ? Math.round(((last.acked - first.acked) / dt) * 10) / 10 : null;
    const shrink = (first.samples - last.samples) / dt;
    if (shrink > 0) etaS = Math.round(s.samples / shrink);
  }
  if (s.samples === 0) etaS = 0;
  return {
    state: s.state,
    samples: s.samples,
    events: s.events,
    bytes: s.bytes,
    maxBytes: s.maxBytes,
    oldestTs: s.oldestTs,
    drainPerS,
    etaS,
    dropped: { ...s.dropped },
    droppedTotal: Object.values(s.dropped).reduce((a, b) => a + b, 0),
    pending: s.pending,
  };
}
