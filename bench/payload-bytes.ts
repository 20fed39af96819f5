/**
 * Uplink bytes per sample on the end-to-end workload (1,000 points at 1 Hz), measured at the subscriber: the
 * payload, and the MQTT PUBLISH around it (fixed header, topic, packet id), for each payload format of fieldgate
 * and for the Node-RED flow's one message per value. `node --import tsx bench/payload-bytes.ts` prints the table.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { startBroker } from './lib/broker.js';
import { f1, f2, int, ratio } from './lib/format.js';
import { installNodeRed } from './lib/nodered.js';
import { launch, measure, type Measured } from './lib/phase.js';
import { startSim } from './lib/sim.js';
import { POINTS } from './lib/workload.js';

const WINDOW_S = 15;
/** An MQTT 5 PUBACK with reason code 0 and no properties: fixed header 2 + packet id 2. */
const PUBACK = 4;

interface Row {
  label: string;
  m: Measured;
  birth?: number;
}

async function one(label: string, name: 'fieldgate' | 'nodered', format?: 'compact' | 'json'): Promise<Row | string> {
  const nodered = name === 'nodered' ? installNodeRed() : undefined;
  if (typeof nodered === 'string') return nodered;
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  try {
    const sys = await launch(name, { sim, broker, pollIntervalMs: 1000, format, nodered });
    await sleep(3000);
    const w = await measure([sys], WINDOW_S, {});
    await sys.stop();
    return { label, m: w.systems[0]!, birth: sys.sub.birthBytes || undefined };
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

export async function run(): Promise<string> {
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const [label, name, format] of [
    ['fieldgate, compact (default)', 'fieldgate', 'compact'],
    ['fieldgate, json', 'fieldgate', 'json'],
    ['Node-RED, one message per value', 'nodered', undefined],
  ] as const) {
    process.stderr.write(`  ${label}...\n`);
    const r = await one(label, name, format);
    if (typeof r === 'string') notes.push(`${label}: not measured, ${r}`);
    else rows.push(r);
  }
  const per = (r: Row) => r.m.mqttBytes / r.m.delivered;
  const node = rows.find((r) => r.m.name === 'nodered');
  const line = (r: Row) => {
    const v = r.m.delivered;
    const msgs = r.m.messages;
    return `| ${r.label} | ${f1(v / msgs)} | ${f2(r.m.payloadBytes / v)} | ${f2((r.m.mqttBytes - r.m.payloadBytes) / msgs)} | ${f2(per(r))} | ${f2((r.m.mqttBytes + PUBACK * msgs) / v)} | ${int((r.m.mqttBytes / r.m.seconds) * 86_400 / 2 ** 20)} | ${node ? ratio(per(r), per(node)) : 'n/a'} |`;
  };
  const birth = rows.find((r) => r.birth)?.birth;
  return [
    `${int(POINTS)} points at pollIntervalMs 1000 (the e2e workload), ${WINDOW_S} s each, counted at a QoS 1 subscriber from the messages it`,
    'received. MQTT bytes are those of an MQTT 5 PUBLISH with QoS 1 and no properties: fixed header (1 + remaining length),',
    'topic (2 + its bytes), packet id (2), properties length (1) and payload; the PUBACK the broker returns is 4 more per',
    "message. TCP/IP headers come on top and depend on how the stack packs segments. Node-RED's measuring properties",
    '(ts, seq) are not counted. Byte counts do not depend on the machine.',
    '',
    '| uplink | values per message | payload B/value | MQTT overhead B/message | MQTT B/value | with PUBACK B/value | MiB a day at this rate | vs Node-RED |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(line),
    ...(notes.length ? ['', ...notes] : []),
    '',
    `The compact format names points by their index in the dictionary of the retained birth message (${birth ? `${int(birth)} bytes for these` : 'sent'}`,
    `${int(POINTS)} points, once per connection); the json format names every sample's device and point; Node-RED's topic names`,
    'the point and its payload is the bare value, with no timestamp, quality or sequence number, so a consumer can neither',
    'order values exactly nor tell a lost one from one never sent.',
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
