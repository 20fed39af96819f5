/** The human-readable unit map `fieldgate simulate` prints: what each unit serves and how to read it. */
import { TABLE_FC, pointWords, type SimPoint } from './registers.js';
import { TRIGGER_COIL, type Scenario } from './simulator.js';

function fmt(n: number): string {
  return Number(n.toPrecision(6)).toString();
}

function conversion(point: SimPoint): string {
  const scale = point.scale ?? 1;
  const offset = point.offset ?? 0;
  if (scale === 1 && offset === 0) return point.unit ?? '';
  const sign = offset < 0 ? '-' : '+';
  const tail = offset === 0 ? '' : ` ${sign} ${fmt(Math.abs(offset))}`;
  return `x ${fmt(scale)}${tail} = ${point.unit ?? ''}`.trimEnd();
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s.padEnd(n);
}

export function describePoint(point: SimPoint): string {
  const words = pointWords(point.type);
  const where = `fc${TABLE_FC[point.table]} ${point.table} ${words > 1 ? `${point.address}-${point.address + words - 1}` : point.address}`;
  const type = words > 1 ? `${point.type} ${point.order ?? 'ABCD'}` : point.type;
  const rw = point.write ? ' (writable)' : '';
  return `    ${pad(where, 22)}${pad(type, 14)}${pad(point.id, 18)}${pad(conversion(point), 28)}${point.description}${rw}`;
}

export function describeScenario(scenario: Scenario): string[] {
  const lines = [`Scenario ${scenario.name}: ${scenario.title}`];
  for (const note of scenario.notes) lines.push(`  ${note}`);
  lines.push('', 'Units (0-based protocol addresses; mbpoll -r counts from 1):');
  for (const unit of scenario.units) {
    lines.push(`  unit ${unit.id}: ${unit.name}`);
    for (const point of unit.map.points) lines.push(describePoint(point));
  }
  lines.push('', 'Any other address answers exception 2 (illegal data address).');
  lines.push(`Event "${scenario.event}": ${scenario.eventDescription}`);
  lines.push(`  start: write coil ${TRIGGER_COIL} of unit 1 = 1, or send SIGUSR1 to this process (kill -USR1 ${process.pid})`);
  lines.push(`  clear: write coil ${TRIGGER_COIL} of unit 1 = 0, or send SIGUSR2 (kill -USR2 ${process.pid})`);
  return lines;
}
