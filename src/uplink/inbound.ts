/**
 * Routes what comes in on the uplink: the session hands every message to the profile, which says what it
 * means; commands go to the guard, a rebirth and the host's state to the uplink. A message the profile
 * does not know is dropped with one rate-limited line: a broker may deliver anything a filter matches.
 */
import type { Command } from '../commands/types.js';
import type { Logger } from '../log.js';
import type { Inbound, UplinkProfile } from './profile.js';
import type { Session } from './types.js';

export interface InboundHandlers {
  /** A parsed command for the guard; the handler answers it (profile.commandResult) and audits it. */
  command(command: Command, retained: boolean): void;
  /** A message on a command topic that could not be parsed. */
  invalid(reason: string, id: string | undefined): void;
  rebirth(): void;
  hostState(online: boolean, ts: number): void;
  configDesired(payload: Buffer): void;
}

/** Subscribes the profile's filters (kept across reconnects by the session) and routes its messages. */
export function routeInbound(session: Session, profile: UplinkProfile, handlers: InboundHandlers, log: Logger): void {
  for (const s of profile.subscriptions()) {
    session.subscribe(s.filter, s.qos).catch((err: Error) => log.warn({ filter: s.filter, err: err.message }, 'subscribe failed; retried at the next connect'));
  }
  session.on('message', (topic, payload, retained, expiryS) => {
    let parsed: Inbound | readonly Inbound[] | null;
    try {
      parsed = profile.inbound(topic, payload, expiryS === undefined ? undefined : { expiryS });
    } catch (err) {
      // A profile must not throw; if it does, the message is refused, never the daemon.
      parsed = { kind: 'invalid', reason: `cannot parse: ${(err as Error).message}` };
    }
    if (!parsed) return;
    for (const m of Array.isArray(parsed) ? parsed : [parsed as Inbound]) route(m, retained);
  });

  function route(m: Inbound, retained: boolean): void {
    switch (m.kind) {
      case 'command':
        return handlers.command(m.command, retained);
      case 'invalid':
        return handlers.invalid(m.reason, m.id);
      case 'rebirth':
        return handlers.rebirth();
      case 'host-state':
        return handlers.hostState(m.online, m.ts);
      case 'config-desired':
        return handlers.configDesired(m.payload);
    }
  }
}
