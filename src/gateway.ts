/**
 * The daemon's wiring: sources -> processing -> outbox -> uplink. It owns start, reload and stop order and
 * nothing else; each stage lives in its own folder.
 */
import { createHash } from 'node:crypto';
import type { Config } from './config/schema.js';
import { deviceKinds } from './config/kinds.js';
import { resolvedType } from './config/points.js';
import { secretFreeJson } from './config/secrets.js';
import { ClockGuard } from './clock/guard.js';
import type { Logger } from './log.js';
import { Outbox } from './outbox/index.js';
import {
  ALARM_STATE_PREFIX,
  Processor,
  aggregatePoints,
  alarmStateEntry,
  type AlarmEvent,
  type ProcessResult,
} from './processing/index.js';
import type { Sample } from './sample.js';
import { createSource, loadDrivers, loadingSource, type Source } from './sources/index.js';
import { sessionOptions } from './uplink/options.js';
import { MqttSession } from './uplink/session.js';
import type { OutboxCondition, Outgoing } from './uplink/profile.js';
import { profileFor } from './uplink/profiles/select.js';
import { routeInbound } from './uplink/inbound.js';
import { LastValues } from './last-values.js';
import { RateLimitedLog } from './sources/ratelog.js';
import { Uplink } from './uplink/uplink.js';
import { VERSION } from './paths.js';
import { CommandGuard } from './commands/guard.js';
import { pointFacts } from './commands/facts.js';
import { controlSocketPath, startControl, stopControl } from './commands/control.js';
import type { CommandResult } from './commands/types.js';
import type { Server } from 'node:net';

export { sessionOptions } from './uplink/options.js';

export interface Gateway {
  readonly config: Config;
  readonly buses: Source[];
  /** Resolves once every bus's source is built and started; rejects when they cannot be (a driver missing, a source that cannot be built). */
  readonly started: Promise<void>;
  outbox: Outbox;
  uplink?: Uplink;
  session?: MqttSession;
  clock: ClockGuard;
  readonly processor: Processor;
  /** Every command (cloud or local socket) goes through it. */
  readonly commands: CommandGuard;
  /** The latest state of every point, which the births and the status page read. */
  readonly lastValues: LastValues;
  /** Applies a new configuration in place when only acquisition and processing changed; else 'restart'. */
  reload(next: Config): Promise<'applied' | 'restart'>;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** Called with every sample as it goes into the outbox (after processing): the status page, tests. */
  onSamples?: (samples: Sample[]) => void;
  /** Called with every alarm raise and clear. */
  onAlarm?: (alarm: AlarmEvent) => void;
  /** A pushed configuration arrived (config/desired): the supervisor's remote configuration judges it. */
  onConfigDesired?: (payload: Buffer) => void;
  /** `fieldgate config rollback` through the control socket. */
  onConfigRollback?: (version: number) => Promise<unknown>;
  /** Called with the publish-to-PUBACK time of every acknowledged telemetry message (metrics). */
  onPuback?: (ms: number) => void;
  /** The last-value cache to feed: the Supervisor's, so it outlives a restart. Default a new one. */
  lastValues?: LastValues;
}

/**
 * A stable hash of the effective configuration, so a consumer can tell which configuration produced data. It is
 * published retained, so secrets (status.token, the broker account) enter it only as "set", never by value.
 */
export function configHash(config: Config): string {
  return createHash('sha256').update(secretFreeJson(config)).digest('hex').slice(0, 12);
}

/** What a reload cannot change in place: the identity, the outbox and the MQTT session. */
function coreOf(config: Config): string {
  return JSON.stringify({ gateway: config.gateway, uplink: config.uplink, buffer: config.buffer });
}

/**
 * Tells the cloud when the outbox stops accepting writes (disk full) and when it recovers. The outbox logs the
 * change itself; this is a live condition, so it is published directly rather than queued behind the backlog.
 */
function watchOutboxState(outbox: Outbox, publish: (condition: OutboxCondition) => void): NodeJS.Timeout {
  let last = 'ok';
  const timer = setInterval(() => {
    const { state, pending } = outbox.stats();
    if (state === last) return;
    publish({ state, was: last, pending, ts: Date.now() });
    last = state;
  }, 5000);
  timer.unref();
  return timer;
}

export function startGateway(initial: Config, logger: Logger, options: GatewayOptions = {}): Gateway {
  let config = initial;
  const gatewayId = config.gateway.id;
  const outbox = Outbox.open({ dir: config.gateway.dataDir, ...config.buffer, logger: logger.child({ stage: 'outbox' }) });

  // Every configured point (and every aggregate series) gets its dictionary index now, so the birth lists them.
  const meta = new Map<string, { unit?: string; type: string; alarms?: string[]; engRange?: [number, number]; writable?: boolean }>();
  const registerPoints = (c: Config) => {
    const kindOf = deviceKinds(c);
    for (const d of c.devices) {
      for (const p of d.points) {
        outbox.seriesId(d.id, p.id);
        const alarms = p.alarms?.map((a) => a.id ?? a.type);
        const eng = p.range?.eng;
        meta.set(`${d.id}\u0000${p.id}`, {
          unit: p.unit,
          type: kindOf(d) === 'line' ? (p.type ?? 'float64') : resolvedType(p),
          ...(alarms?.length ? { alarms } : {}),
          ...(eng ? { engRange: [Math.min(eng[0], eng[1]), Math.max(eng[0], eng[1])] as [number, number] } : {}),
          ...(p.write !== undefined ? { writable: true } : {}),
        });
      }
    }
    for (const a of aggregatePoints(c.devices)) outbox.seriesId(a.device, a.point);
  };
  registerPoints(config);

  const report = outbox.startupReport.recreated;
  if (report) {
    // Durable, so the cloud learns why the epoch changed even if the link is down now.
    outbox.appendEvent({ kind: 'outbox-recreated', ...report });
  }

  const lastValues = options.lastValues ?? new LastValues();
  // A cache from before a restart keeps only what this configuration still has.
  const retainConfigured = (c: Config) => {
    const configured = new Set([...c.devices.flatMap((d) => d.points.map((p) => `${d.id}\u0000${p.id}`)), ...aggregatePoints(c.devices).map((a) => `${a.device}\u0000${a.point}`)]);
    lastValues.retain((device, point) => configured.has(`${device}\u0000${point}`));
  };
  retainConfigured(config);

  // Commands: judged against the configuration of the moment, audited in the outbox, run on the device's bus.
  let facts = pointFacts(config);
  const guard = new CommandGuard({
    now: Date.now,
    log: logger.child({ stage: 'commands' }),
    audit: outbox,
    points: (device) => facts.get(device),
    writer: (device) => {
      const bus = config.devices.find((d) => d.id === device)?.bus;
      const source = buses.find((b) => b.id === bus);
      if (source?.write) return (request) => source.write!(request);
      if (bus === undefined || sourcesReady) return undefined;
      // A command that arrives while the drivers load (one the broker kept for this session, at start) waits for
      // its bus instead of being refused; the bus checks its expiry again before sending.
      return async (request) => {
        await sourcesStarted;
        const loaded = buses.find((b) => b.id === bus);
        return loaded?.write ? loaded.write(request) : { status: 'failed', reason: `the bus of device "${device}" did not start` };
      };
    },
    alarms: () => processor,
    deliverAlarms: (alarms) => deliver({ samples: [], alarms }),
  });
  // A result goes out at once, or at the next connect: commands queued for a kept session arrive before the
  // session counts as connected. Bounded; the audit event in the outbox is the durable record either way.
  const unsentResults: Outgoing[] = [];
  const flushResults = () => {
    while (session?.connected && unsentResults.length > 0) {
      const m = unsentResults.shift()!;
      session.publish(m.topic, m.payload, m.qos, m.retain).catch(() => {});
    }
  };
  const publishResult = (result: CommandResult) => {
    const m = uplink?.profile.commandResult(result);
    if (!m) return;
    unsentResults.push(m);
    if (unsentResults.length > 100) unsentResults.shift();
    flushResults();
  };

  let uplink: Uplink | undefined;
  let session: MqttSession | undefined;
  if (config.uplink) {
    if (config.uplink.insecure) logger.warn('uplink.insecure is true: the broker certificate is NOT verified; anyone on the path can read and forge telemetry');
    const profile = profileFor(config, outbox, VERSION);
    session = new MqttSession(sessionOptions(config, profile), logger.child({ stage: 'uplink' }));
    uplink = new Uplink({
      session,
      profile,
      outbox,
      config: config.uplink,
      gatewayId,
      logger,
      onPuback: options.onPuback,
      birth: () => ({
        version: VERSION,
        configHash: configHash(config),
        epoch: outbox.epoch,
        points: outbox.series().map((s) => ({ index: s.id, device: s.device, point: s.point, ...meta.get(`${s.device}\u0000${s.point}`) })),
        latest: (device, point) => lastValues.get(device, point),
        activeAlarms: new Set(processor.activeAlarms().map((a) => `${a.device}/${a.point}/${a.alarm}`)),
        outboxState: outbox.stats().state,
      }),
    });
    const live = uplink;
    session.on('state', (state) => state === 'connected' && flushResults());
    const invalidLog = new RateLimitedLog(logger.child({ stage: 'commands' }), Date.now);
    routeInbound(session, profile, {
      command: (c, retained) => void guard.handle(c, { retained }).then(publishResult),
      invalid: (reason, id) => {
        invalidLog.warn('uplink', 'invalid-command', { id, reason }, `inbound command refused: ${reason}`);
        if (id !== undefined) publishResult({ id, status: 'rejected', reason, ts: Date.now() });
      },
      rebirth: () => {
        logger.info('rebirth requested by the host');
        live.rebirth();
      },
      hostState: (online, ts) => live.hostState(online, ts),
      configDesired: (payload) => {
        if (options.onConfigDesired) options.onConfigDesired(payload);
        else invalidLog.warn('uplink', 'config-desired', {}, 'a pushed configuration arrived, but remote configuration is not enabled: ignored');
      },
    }, logger.child({ stage: 'uplink' }));
    uplink.start();
  } else {
    logger.warn('no uplink configured: samples are kept in the outbox only (fieldgate buffer export)');
  }

  const outboxWatch = watchOutboxState(outbox, (condition) => {
    if (!session || !uplink) return;
    const m = uplink.profile.outboxCondition(condition);
    if (m) session.publish(m.topic, m.payload, m.qos, m.retain).catch(() => {});
  });

  // Samples taken while the clock is not trusted are flagged on the way in, and corrected in place when it is.
  const clock = new ClockGuard(config.gateway.clock, {
    logger: logger.child({ stage: 'clock' }),
    outbox: { target: outbox, fromSeq: outbox.startupReport.lastSeq + 1 },
  });
  clock.start();

  // Active alarms come back from the outbox, written in the same transaction as their raise or clear event.
  let processor = new Processor(config.devices, { restored: outbox.readState(ALARM_STATE_PREFIX) });
  const deliver = (result: ProcessResult) => {
    for (const alarm of result.alarms) {
      outbox.appendEvent({ kind: 'alarm', alarm }, alarmStateEntry(alarm));
      options.onAlarm?.(alarm);
    }
    if (result.samples.length > 0) {
      outbox.append(result.samples);
      lastValues.update(result.samples);
    }
    // An alarm must get out first: commit now instead of at the next grouped commit.
    if (result.alarms.length > 0) outbox.commit();
    if (result.samples.length > 0) options.onSamples?.(result.samples);
  };
  const guarded = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      // A bug in one batch must not stop acquisition; the samples of that batch are reported, not silently lost.
      logger.error({ err }, `${what} failed`);
    }
  };
  // A sink call is one request's samples (or one line's): committed as soon as no other bus is mid-poll.
  const sink = (samples: Sample[]) =>
    guarded('processing samples', () => {
      deliver(processor.process(clock.stamp(samples)));
      outbox.commitSoon();
    });
  // A device that stops answering, and one that answers again, is told to the profile (Sparkplug DDEATH / DBIRTH).
  const answering = new Map<string, boolean>();
  const watchDevices = () => {
    for (const bus of buses) {
      for (const h of bus.health()) {
        if (h.state === 'unknown') continue;
        // A device on a bus whose link is down does not answer either, whatever its last poll said.
        const alive = h.state === 'ok' && bus.linkState === 'connected';
        // Every device is born alive (its DBIRTH): one that stopped answering before the first look is dead.
        const was = answering.get(h.device) ?? true;
        answering.set(h.device, alive);
        if (was !== alive) uplink?.deviceState(h.device, alive);
      }
    }
  };
  const ticker = setInterval(() => {
    guarded('processing tick', () => deliver(processor.tick(Date.now())));
    guarded('device states', watchDevices);
    guarded('command ledger', () => guard.tick());
  }, 1000);
  ticker.unref();

  const devicesOf = (c: Config, bus: string) => c.devices.filter((d) => d.bus === bus);
  // Every source is built before any starts: one that cannot be built leaves none polling behind it.
  const startSources = (c: Config) => {
    const built = c.buses.map((bus) => createSource(bus, devicesOf(c, bus.id), { logger, sink, cycle: (busy: boolean) => outbox.sourceBusy(bus.id, busy) }));
    for (const source of built) source.start();
    return built;
  };
  // The drivers load on first use (sources/registry.ts): until then a stand-in lists each bus (link down, devices
  // not polled yet), replaced by the started sources once loaded. Stop and reload wait for that; a stop that came
  // first leaves them unstarted.
  let buses = config.buses.map((bus) => loadingSource(bus, devicesOf(config, bus.id)));
  let sourcesReady = false;
  const started = loadDrivers(config.buses).then(() => {
    if (stopping) return;
    buses = startSources(config);
    sourcesReady = true;
    logger.info({ gateway: gatewayId, version: VERSION, buses: buses.length, devices: config.devices.length }, 'gateway started');
  });
  // A gateway that polls nothing is a broken install: the supervisor ends the daemon on `started` (exit 1).
  const sourcesStarted = started.catch(() => {});

  // The technician's CLI on site (fieldgate command, fieldgate alarms) talks to the same guard.
  const controlPath = controlSocketPath(config.gateway.dataDir);
  const control: Promise<Server | undefined> = startControl(
    controlPath,
    { command: (c) => guard.handle(c), alarms: () => processor.alarmStates(), now: Date.now, configRollback: options.onConfigRollback },
    logger.child({ stage: 'control' }),
  ).catch((err: Error) => {
    logger.warn({ path: controlPath, err: err.message }, 'control socket not started: fieldgate command and fieldgate alarms cannot reach this gateway');
    return undefined;
  });

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    // Stop intake, commit, let the link take what it can in the time allowed, say offline, close.
    const server = await control;
    if (server) await stopControl(server, controlPath);
    await sourcesStarted;
    await Promise.all(buses.map((b) => b.stop()));
    clearInterval(ticker);
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
    get config() {
      return config;
    },
    started,
    get buses() {
      return buses;
    },
    get processor() {
      return processor;
    },
    outbox,
    commands: guard,
    lastValues,
    uplink,
    session,
    clock,
    async reload(next) {
      if (coreOf(next) !== coreOf(config)) return 'restart';
      // The new drivers load before any source stops: a driver that cannot load leaves the running sources polling.
      await sourcesStarted;
      await loadDrivers(next.buses);
      // Sources stop between two polls; what they acquired is committed before the new plan starts.
      await Promise.all(buses.map((b) => b.stop()));
      for (const b of buses) outbox.sourceBusy(b.id, false);
      outbox.commit();
      config = next;
      facts = pointFacts(next);
      registerPoints(next);
      retainConfigured(next);
      processor = new Processor(next.devices, { restored: outbox.readState(ALARM_STATE_PREFIX) });
      buses = startSources(next);
      uplink?.refreshBirth();
      logger.info({ buses: buses.length, devices: next.devices.length, configHash: configHash(next) }, 'configuration reloaded');
      return 'applied';
    },
    stop() {
      stopping ??= stop();
      return stopping;
    },
  };
}
