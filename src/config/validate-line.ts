/**
 * Cross-field rules for line-sensor buses and devices, and for the processing keys of any point. Every point
 * type of the schema has a line converter (sources/line/parse.ts), so a line point's type needs no rule here;
 * Modbus keys on a line device are refused by kind (raw-rules.ts).
 */
import type { DeviceConfig, LineBusConfig, PointConfig } from './schema.js';
import type { IssuePath, RuleIssue } from './issues.js';

function compiles(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: /, '');
  }
}

export function checkLineBus(bus: LineBusConfig, at: IssuePath, issues: RuleIssue[]): void {
  if (bus.host !== undefined && typeof bus.port !== 'number') {
    issues.push({ path: [...at, 'port'], message: `with host, port is the TCP port of the serial device server (a number), not ${JSON.stringify(bus.port)}` });
  }
  if (bus.host === undefined && typeof bus.port !== 'string') {
    issues.push({ path: [...at, 'port'], message: 'port is a serial device path (e.g. /dev/ttyUSB1); for a serial device server over TCP add host' });
  }
}

export function checkLineDevice(device: DeviceConfig, at: IssuePath, issues: RuleIssue[]): void {
  const parse = device.parse;
  const modes = parse ? (['regex', 'kv', 'csv', 'json'] as const).filter((m) => parse[m] !== undefined) : [];
  if (!parse || modes.length === 0) {
    issues.push({ path: parse ? [...at, 'parse'] : at, message: 'a line device needs parse: with one of regex, kv, csv or json' });
  } else if (modes.length > 1) {
    issues.push({ path: [...at, 'parse'], message: `parse takes one of regex, kv, csv or json, not ${modes.join(' and ')}` });
  }
  let groups: Set<string> | undefined;
  if (parse?.regex !== undefined) {
    const bad = compiles(parse.regex);
    if (bad) issues.push({ path: [...at, 'parse', 'regex'], message: `not a valid regular expression: ${bad}` });
    else groups = new Set([...parse.regex.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1]!));
  }
  if (device.match !== undefined) {
    const bad = compiles(device.match);
    if (bad) issues.push({ path: [...at, 'match'], message: `not a valid regular expression: ${bad}` });
  }
  const columns = parse?.csv ? new Set(parse.csv.columns) : undefined;
  device.points.forEach((point, p) => {
    const here: IssuePath = [...at, 'points', p];
    const field = point.field ?? point.id;
    if (groups && !groups.has(field)) {
      issues.push({ path: [...here, point.field ? 'field' : 'id'], message: `the regex has no named group "${field}"${groups.size ? `; it has ${[...groups].join(', ')}` : ' (use (?<name>...))'}` });
    }
    if (columns && !columns.has(field)) {
      issues.push({ path: [...here, point.field ? 'field' : 'id'], message: `csv has no column "${field}"; its columns are ${[...columns].join(', ')}` });
    }
  });
}

export function checkProcessing(point: PointConfig, at: IssuePath, issues: RuleIssue[]): void {
  if (point.maxIntervalS !== undefined && point.deadband === undefined) {
    issues.push({ path: [...at, 'maxIntervalS'], message: 'maxIntervalS bounds the silence of a deadband; set deadband too (or remove maxIntervalS)' });
  }
  if (point.sensorFault === 'namur' && point.range && (point.range.raw[0] !== 4 || point.range.raw[1] !== 20)) {
    issues.push({ path: [...at, 'range', 'raw'], message: 'sensorFault: namur expects the raw reading in mA with range raw [4, 20]' });
  }
  const ids = new Map<string, number>();
  (point.alarms ?? []).forEach((alarm, i) => {
    const id = alarm.id ?? alarm.type;
    const first = ids.get(id);
    if (first !== undefined) {
      issues.push({ path: [...at, 'alarms', i, alarm.id ? 'id' : 'type'], message: `alarm id "${id}" is also alarms[${first}]; give each alarm of one type its own id` });
    } else ids.set(id, i);
  });
}
