/**
 * Alarm latency: from the register change at the simulated device to the broker's PUBACK of the alarm event, while
 * the gateway polls the 1,000-point map at 1 Hz, and again while a backlog drains at full speed. The alarm point is
 * its own device (own connection, pollIntervalMs 100) with a high alarm; the benchmark sets its register above and
 * below the limit in turn (each change one raise or clear) and times each event at a relay between the gateway and
 * Mosquitto (bench/lib/mqtt-tap.ts: the PUBACK passing back toward the gateway), and at a QoS 1 subscriber.
 * Default uplink batching. `npm run bench -- alarm`; FIELDGATE_BENCH_ALARMS sets the changes of the steady phase
 * (60), FIELDGATE_BENCH_BACKLOG the backlog (2,000,000 samples).
 */
import mqtt from 'mqtt';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { fill } from './uplink-drain.js';
import { startBroker } from './lib/broker.js';
import { shipped } from './lib/bundle.js';
import { startFieldgate } from './lib/fieldgate.js';
import { int, load, seconds } from './lib/format.js';
import { startTap, type TappedPublish } from './lib/mqtt-tap.js';
import { Histogram } from './lib/subscriber.js';
import { startSim } from './lib/sim.js';
import { ALARM_POINT, GATEWAY_ID, POINTS, TOPIC_PREFIX } from './lib/workload.js';

const ALARM_POLL_MS = 100;
const LIMIT = 1000;
const STEADY_CHANGES = seconds('FIELDGATE_BENCH_ALARMS', 60);
const BACKLOG = seconds('FIELDGATE_BENCH_BACKLOG', 2_000_000);
const ALARMS = `${TOPIC_PREFIX}/${GATEWAY_ID}/alarms`;
/** Telemetry messages per 250 ms above which the backlog counts as draining (live traffic is ~2 a second). */
const DRAINING_RATE = 10;

interface Change {
  changedAt: number;
  /** The alarm event's ts: when the gateway read the register. */
  readAt: number;
  pubackAt: number;
  arrivedAt?: number;
  draining: boolean;
}

const isAlarmOf = (payload: Buffer): { ts: number } | undefined => {
  try {
    const o = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    const a = o;
    return a.event === 'alarm' && a.device === ALARM_POINT.device && a.point === ALARM_POINT.point && typeof a.ts === 'number' ? { ts: a.ts } : undefined;
  } catch {
    return undefined;
  }
};

interface Phase {
  label: string;
  changes: Change[];
  timeouts: number;
  drainSeconds?: number;
  loadBefore: string;
}

async function phase(label: string, backlog: number): Promise<Phase> {
  const loadBefore = load();
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  const tap = await startTap(broker.port, 5, (topic) => topic === ALARMS);
  const arrivals: number[] = [];
  const sub = await mqtt.connectAsync(broker.url, { clientId: `bench-alarm-${process.pid}`, clean: true, protocolVersion: 5 });
  sub.on('message', (_t, payload) => {
    if (isAlarmOf(payload)) arrivals.push(Date.now());
  });
  await sub.subscribeAsync(ALARMS, { qos: 1 });
  let drainStart = 0;
  const gw = startFieldgate(
    { simPort: sim.port, brokerUrl: tap.url, pollIntervalMs: 1000, busPerDevice: true, alarm: { pollIntervalMs: ALARM_POLL_MS, limit: LIMIT } },
    [],
    shipped(),
    // Cycles of 100 samples a second ending now: recent enough for the outbox's age limit.
    backlog > 0 ? (dir) => void fill(dir, Math.floor(Date.now() / 1000 - backlog / 100), backlog) : undefined,
  );
  // Draining while the relay sees more telemetry than live traffic makes.
  let lastCount = 0;
  let drainingUntil = 0;
  const rate = setInterval(() => {
    const n = tap.counts.get('telemetry') ?? 0;
    if (n - lastCount > DRAINING_RATE) {
      drainingUntil = Date.now();
      drainStart ||= Date.now();
    }
    lastCount = n;
  }, 250);
  const changes: Change[] = [];
  let timeouts = 0;
  try {
    const deadline = Date.now() + 60_000;
    while ((tap.counts.get('telemetry') ?? 0) === 0 && Date.now() < deadline) await sleep(20);
    if ((tap.counts.get('telemetry') ?? 0) === 0) throw new Error(`no telemetry within 60 s: ${gw.child.output().slice(-1500)}`);
    await sleep(backlog > 0 ? 0 : 3000);
    const seen = () => tap.publishes.filter((p) => isAlarmOf(p.payload));
    const started = Date.now();
    for (let k = 0; ; k++) {
      if (Date.now() - started > 120_000) break;
      if (backlog === 0 && k >= STEADY_CHANGES) break;
      if (backlog > 0 && drainStart > 0 && Date.now() - drainingUntil > 1000) break;
      const before = seen().length;
      const changedAt = await sim.set(ALARM_POINT.unit, ALARM_POINT.address, k % 2 === 0 ? LIMIT * 2 : 0);
      const until = Date.now() + 5000;
      let ev: TappedPublish | undefined;
      while (Date.now() < until) {
        ev = seen()[before];
        if (ev?.pubackAt !== undefined) break;
        await sleep(1);
      }
      if (ev?.pubackAt === undefined) {
        timeouts++;
        // Put the register back in step with the alarm's state before going on.
        await sleep(1000);
        k = seen().length % 2 === 0 ? 1 : 0;
        continue;
      }
      const draining = backlog > 0 && drainStart > 0 && ev.pubackAt - drainingUntil < 300;
      changes.push({ changedAt, readAt: isAlarmOf(ev.payload)!.ts, pubackAt: ev.pubackAt, draining });
      // The next change at a random phase of the alarm device's poll.
      await sleep(50 + Math.random() * 250);
    }
    await sleep(500);
    const tapped = tap.publishes.filter((p) => isAlarmOf(p.payload));
    // The subscriber's arrivals are in the same order as the gateway's publishes (one session, QoS 1).
    changes.forEach((c) => {
      const i = tapped.findIndex((p) => p.pubackAt === c.pubackAt);
      c.arrivedAt = arrivals[i];
    });
  } finally {
    clearInterval(rate);
    await gw.stop();
    await sub.endAsync();
    await tap.close();
    await sim.stop();
    await broker.stop();
  }
  return { label, changes, timeouts, drainSeconds: drainStart ? (drainingUntil - drainStart) / 1000 : undefined, loadBefore };
}

function percentiles(values: number[]): string {
  const h = new Histogram();
  for (const v of values) h.add(v);
  return h.count === 0 ? 'n/a' : [50, 90, 99, 100].map((p) => int(h.percentile(p))).join(' / ');
}

export async function run(): Promise<string> {
  const phases: Phase[] = [];
  process.stderr.write(`  ${STEADY_CHANGES} alarm changes at steady load...\n`);
  phases.push(await phase('steady, nothing buffered', 0));
  process.stderr.write(`  alarm changes while ${int(BACKLOG)} buffered samples drain...\n`);
  phases.push(await phase(`${int(BACKLOG)} buffered samples draining`, BACKLOG));
  const after = load();
  const rows = phases.flatMap((p) => {
    const all = p.label.includes('draining') ? p.changes.filter((c) => c.draining) : p.changes;
    const subs = all.filter((c) => c.arrivedAt !== undefined).map((c) => c.arrivedAt! - c.changedAt);
    return [
      `| ${p.label} | ${all.length}${p.timeouts ? ` (${p.timeouts} with no event in 5 s)` : ''} | ${percentiles(all.map((c) => c.pubackAt - c.changedAt))} | ${percentiles(all.map((c) => c.pubackAt - c.readAt))} | ${percentiles(subs)} | ${p.loadBefore} |`,
    ];
  });
  const drain = phases[1]?.drainSeconds;
  return [
    `\`fieldgate run -c FILE\` (${shipped().label}) polling the synthetic ${int(POINTS)}-point map at 1 Hz (4 units, one connection`,
    `each) and an alarm device (one register with a high alarm, its own connection, pollIntervalMs ${ALARM_POLL_MS}) from the simulator,`,
    'publishing to Mosquitto with the default uplink (QoS 1, batches of up to 500, maxDelayMs 1000). The benchmark sets the',
    "alarm register above and below the limit in turn (each change one raise or clear, the next one 50-300 ms after the last one's",
    'PUBACK, so changes fall at every phase of the poll), on the simulator\'s clock, which is the machine\'s. "PUBACK" is when the',
    "broker's PUBACK of the alarm event passed a relay between the gateway and Mosquitto on its way back to the gateway (the relay",
    'reads the MQTT packets; bench/lib/mqtt-tap.ts); "read" is the event\'s ts, when the gateway read the register; "subscriber"',
    'is its arrival at a QoS 1 subscriber of the alarms topic. The drain phase starts the gateway on an outbox holding the',
    `backlog (built before the start, as \`uplink-drain\` builds it) and counts the changes whose PUBACK came while it drained${drain === undefined ? '' : ` (${drain.toFixed(1)} s)`}.`,
    `Load average after: ${after}.`,
    '',
    '| phase | alarm events | register change -> PUBACK ms, p50 / p90 / p99 / max | read -> PUBACK ms | register change -> subscriber ms | load average before |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `Target: p99 at most the poll interval + 20 ms (${ALARM_POLL_MS + 20} ms) from the register change; the wait for the next poll is up to`,
    `${ALARM_POLL_MS} ms of it, the gateway's own share is the read -> PUBACK column.`,
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
