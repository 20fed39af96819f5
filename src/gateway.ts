/**
 * The daemon's wiring: sources -> outbox -> uplink. It owns start and stop order and nothing else; each stage
 * lives in its own folder.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from './config/schema.js';
import { resolvedType } from './config/points.js';
import { ClockGuard } from './clock/guard.js';
import { UserError } from './errors.js';
import type { Logger } from './log.js';
import { Outbox } from './outbox/index.js';
import type { Sample } from './sample.js';
import { createSource, type Source } from './sources/index.js';
import { MqttSession, type SessionOptions } from './uplink/session.js';
import { Uplink, birthStatus, offlineStatus, topicsFor } from './uplink/uplink.js';
import { VERSION } from './version.js';

export interface Gateway {
  config: Config;
  buses: Source[];
  outbox: Outbox;
  uplink?: Uplink;
  session?: MqttSession;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** Also called with every sample as acquired (tests, the status page). */
  onSamples?: (samples: Sample[]) => void;
}

/** A stable hash of the effective configuration, so a consumer can tell which configuration produced data. */
export function configHash(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}

function readSecretFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

/** Session options from the config; files are read once here so a missing certificate fails at start, clearly. */
export function sessionOptions(config: Config): SessionOptions {
  const u = config.uplink!;
  const password = process.env.FIELDGATE_MQTT_PASSWORD ?? (u.passwordFile ? readSecretFile('uplink.passwordFile', u.passwordFile).toString('utf8').split(/\r?\n/)[0] : undefined);
  const topics = topicsFor(u.topicPrefix, config.gateway.id);
  return {
    url: u.url,
    clientId: u.clientId ?? `fieldgate-${config.gateway.id}`,
    username: u.username,
    password,
    ca: u.ca ? readSecretFile('uplink.ca', u.ca) : undefined,
    cert: u.cert ? readSecretFile('uplink.cert', u.cert) : undefined,
    key: u.key ? readSecretFile('uplink.key', u.key) : undefined,
    insecure: u.insecure,
    protocolVersion: u.protocolVersion,
    keepaliveS: u.keepaliveS,
    connectTimeoutMs: u.connectTimeoutMs,
    reconnectMinMs: u.reconnectMinMs,
    reconnectMaxMs: u.reconnectMaxMs,
    will: { topic: topics.status, payload: offlineStatus('lost') },
  };
}

/**
 * Tells the cloud when the outbox stops accepting writes (disk full) and when it recovers. The outbox logs the
 * change itself; this is a live condition, so it is published directly rather than queued behind the backlog.
 */
function watchOutboxState(outbox: Outbox, publish: (json: string) => void, gatewayId: string): NodeJS.Timeout {
  let last = 'ok';
  const timer = setInterval(() => {
    const { state, pending } = outbox.stats();
    if (state === last) return;
    publish(JSON.stringify({ v: 1, event: 'outbox-state', g: gatewayId, state, was: last, pending, ts: Date.now() }));
    last = state;
  }, 5000);
  timer.unref();
  return timer;
}

export function startGateway(config: Config, logger: Logger, options: GatewayOptions = {}): Gateway {
  const outbox = Outbox.open({ dir: config.gateway.dataDir, ...config.buffer, logger: logger.child({ stage: 'outbox' }) });
  // Every configured point gets its dictionary index now, so the birth message lists them all.
  const meta = new Map<string, { unit?: string; type: string }>();
  for (const d of config.devices) {
    for (const p of d.points) {
      outbox.seriesId(d.id, p.id);
      meta.set(`${d.id}\u0000${p.id}`, { unit: p.unit, type: resolvedType(p) });
    }
  }

  const report = outbox.startupReport.recreated;
  if (report) {
    // Durable, so the cloud learns why the epoch changed even if the link is down now.
    outbox.appendEvent('events', JSON.stringify({ v: 1, event: 'outbox-recreated', g: config.gateway.id, reason: report.reason, error: report.error, movedTo: report.movedTo }));
  }

  let uplink: Uplink | undefined;
  let session: MqttSession | undefined;
  if (config.uplink) {
    if (config.uplink.insecure) logger.warn('uplink.insecure is true: the broker certificate is NOT verified; anyone on the path can read and forge telemetry');
    session = new MqttSession(sessionOptions(config), logger.child({ stage: 'uplink' }));
    const hash = configHash(config);
    uplink = new Uplink({
      session,
      outbox,
      config: config.uplink,
      gatewayId: config.gateway.id,
      logger,
      birth: () =>
        birthStatus({
          gatewayId: config.gateway.id,
          version: VERSION,
          configHash: hash,
          epoch: outbox.epoch,
          points: outbox.series().map((s) => ({ index: s.id, device: s.device, point: s.point, ...meta.get(`${s.device}\u0000${s.point}`) })),
        }),
    });
    uplink.start();
  } else {
    logger.warn('no uplink configured: samples are kept in the outbox only (fieldgate buffer export)');
  }

  const outboxWatch = watchOutboxState(
    outbox,
    (json) => void session?.publish(uplink!.topics.events, json, 1).catch(() => {}),
    config.gateway.id,
  );

  // Samples taken while the clock is not trusted are flagged on the way in, and corrected in place when it is.
  const clockOutbox = { target: outbox, fromSeq: outbox.startupReport.lastSeq + 1 };
  const clock = new ClockGuard(config.gateway.clock, { logger: logger.child({ stage: 'clock' }), outbox: clockOutbox });
  clock.start();
  const sink = (samples: Sample[]) => {
    const stamped = clock.stamp(samples);
    outbox.append(stamped);
    options.onSamples?.(stamped);
  };
  const buses = config.buses.map((bus) => {
    const source = createSource(bus, config.devices.filter((d) => d.bus === bus.id), { logger, sink });
    source.start();
    return source;
  });
  logger.info({ gateway: config.gateway.id, version: VERSION, buses: buses.length, devices: config.devices.length }, 'gateway started');

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    // Stop intake, commit, let the link take what it can in the time allowed, say offline, close.
    await Promise.all(buses.map((b) => b.stop()));
    await clock.stop();
    outbox.commit();
    if (uplink) {
      const drained = await uplink.drain(config.uplink!.shutdownTimeoutMs);
      if (!drained) logger.info({ left: outbox.stats().samples }, 'shutdown: backlog left in the outbox for next start');
      await uplink.stop();
    }
    clearInterval(outboxWatch);
    outbox.close();
    logger.info('gateway stopped');
  };
  return {
    config,
    buses,
    outbox,
    uplink,
    session,
    stop() {
      stopping ??= stop();
      return stopping;
    },
  };
}
