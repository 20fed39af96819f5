/** Small stored events for outbox tests: a recreated-outbox record whose reason names it. */
import type { GatewayEvent, StoredEvent } from '../../src/events.js';

export function marker(name: string): GatewayEvent {
  return { kind: 'outbox-recreated', reason: name };
}

/** The names of `marker` events, in seq order. */
export function markers(events: readonly StoredEvent[]): string[] {
  return events.map((e) => (e.event.kind === 'outbox-recreated' ? e.event.reason : `<${e.event.kind}>`));
}
