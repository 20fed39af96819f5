/**
 * The Node-RED flow of the comparison, written as a user builds it: per device a modbus-client (its own TCP
 * connection), per request block a polling modbus-read node, a function node that shapes one MQTT message per
 * value (decoded as a buffer-parser node would) and one mqtt out node with QoS 1. No timestamp, quality or
 * sequence number travels in the payload, as in the usual flow; the ts and seq the benchmark needs ride as MQTT 5
 * user properties, which the byte counts leave out.
 */
import { GATEWAY_ID, TOPIC_PREFIX, requestBlocks, type Block, type BlockPoint } from './workload.js';

export interface FlowOptions {
  simPort: number;
  brokerPort: number;
  pollIntervalMs: number;
}

const DATA_TYPE = { 1: 'Coil', 2: 'Input', 3: 'HoldingRegister', 4: 'InputRegister' } as const;

function decimals(x: number): number {
  const s = String(x);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** [id, offset, kind, bit, rounding factor] of each point; kind folds type and word order. */
function pointRow(block: Block, p: BlockPoint): [string, number, string, number, number, number] {
  let kind: string = p.type;
  if (block.fc <= 2) kind = 'coil';
  else if (p.bit !== undefined) kind = 'bit';
  else if (p.order === 'CDAB') kind += 'r';
  return [p.id, p.offset, kind, p.bit ?? 0, p.scale, 10 ** decimals(p.scale)];
}

/** The function node's code: one message per point of the block. */
function shapeCode(block: Block): string {
  const rows = JSON.stringify(block.points.map((p) => pointRow(block, p)));
  const prefix = `${TOPIC_PREFIX}/${GATEWAY_ID}/${block.device}/`;
  return `const pts = ${rows};
const d = msg.payload;
const now = Date.now();
let seq = global.get('seq') || 0;
const b = Buffer.alloc(4);
const f32 = (hi, lo) => { b.writeUInt16BE(hi, 0); b.writeUInt16BE(lo, 2); return Number(b.readFloatBE(0).toPrecision(7)); };
const out = new Array(pts.length);
for (let i = 0; i < pts.length; i++) {
  const [id, o, kind, bit, scale, k] = pts[i];
  let v;
  switch (kind) {
    case 'coil': v = Boolean(d[o]); break;
    case 'bit': v = ((d[o] >> bit) & 1) === 1; break;
    case 'uint16': v = d[o]; break;
    case 'int16': v = d[o] > 32767 ? d[o] - 65536 : d[o]; break;
    case 'uint32': v = d[o] * 65536 + d[o + 1]; break;
    case 'uint32r': v = d[o + 1] * 65536 + d[o]; break;
    case 'int32': v = (d[o] << 16) | d[o + 1]; break;
    case 'int32r': v = (d[o + 1] << 16) | d[o]; break;
    case 'float32': v = f32(d[o], d[o + 1]); break;
    case 'float32r': v = f32(d[o + 1], d[o]); break;
  }
  if (scale !== 1) v = Math.round(v * scale * k) / k;
  out[i] = { topic: '${prefix}' + id, payload: v, qos: 1, userProperties: { ts: String(now), seq: String(++seq) } };
}
global.set('seq', seq);
return [out];`;
}

export function noderedFlow(o: FlowOptions): unknown[] {
  const tab = 'bench-tab';
  const broker = 'bench-broker';
  const mqttOut = 'bench-mqtt-out';
  const nodes: unknown[] = [
    { id: tab, type: 'tab', label: 'fieldgate comparison', disabled: false, info: '' },
    {
      id: broker, type: 'mqtt-broker', name: 'bench broker', broker: '127.0.0.1', port: String(o.brokerPort), clientid: 'bench-nodered',
      autoConnect: true, usetls: false, protocolVersion: '5', keepalive: '60', cleansession: true, autoUnsubscribe: true,
      birthTopic: '', closeTopic: '', willTopic: '', sessionExpiry: '', userProps: '',
    },
    { id: mqttOut, type: 'mqtt out', z: tab, name: 'telemetry', topic: '', qos: '1', retain: 'false', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker, x: 700, y: 100, wires: [] },
  ];
  const blocks = requestBlocks();
  const units = [...new Set(blocks.map((b) => b.unit))];
  for (const unit of units) {
    nodes.push({
      id: `client-${unit}`, type: 'modbus-client', name: `unit ${unit}`, clienttype: 'tcp', bufferCommands: true,
      stateLogEnabled: false, queueLogEnabled: false, failureLogEnabled: false, tcpHost: '127.0.0.1', tcpPort: String(o.simPort),
      tcpType: 'DEFAULT', serialPort: '/dev/null', serialType: 'RTU-BUFFERD', serialBaudrate: '9600', serialDatabits: '8',
      serialStopbits: '1', serialParity: 'none', serialConnectionDelay: '100', serialAsciiResponseStartDelimiter: '0x3A',
      unit_id: String(unit), commandDelay: '1', clientTimeout: '1000', reconnectOnTimeout: true, reconnectTimeout: '2000',
      parallelUnitIdsAllowed: true, showErrors: false, showWarnings: false, showLogs: false,
    });
  }
  blocks.forEach((block, i) => {
    const fn = `shape-${i}`;
    nodes.push({
      id: `read-${i}`, type: 'modbus-read', z: tab, name: `${block.device} fc${block.fc} @${block.address}`, topic: '',
      showStatusActivities: false, logIOActivities: false, showErrors: false, showWarnings: false, unitid: String(block.unit),
      dataType: DATA_TYPE[block.fc], adr: String(block.address), quantity: String(block.count), rate: String(o.pollIntervalMs),
      rateUnit: 'ms', delayOnStart: false, startDelayTime: '', server: `client-${block.unit}`, useIOFile: false, ioFile: '',
      useIOForPayload: false, emptyMsgOnFail: false, keepMsgProperties: false, x: 150, y: 40 + 40 * i, wires: [[fn], []],
    });
    nodes.push({
      id: fn, type: 'function', z: tab, name: `one message per value`, func: shapeCode(block), outputs: 1, timeout: 0, noerr: 0,
      initialize: '', finalize: '', libs: [], x: 420, y: 40 + 40 * i, wires: [[mqttOut]],
    });
  });
  return nodes;
}
