/**
 * `fieldgate alarms`: the alarms of the running gateway and their ISA-18.2 states, and acknowledging or shelving
 * one on site with no link, through the same guard and audit as the cloud's cmd/alarm.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { controlRequest, controlSocketPath } from '../commands/control.js';
import { UserError } from '../errors.js';
import { gatewayOf, operator, sendCommand } from './command.js';

interface AlarmRow {
  device: string;
  point: string;
  alarm: string;
  severity?: string;
  state: string;
  shelvedUntil?: number;
  value?: number | null;
  limit?: number | null;
  ts?: number;
}

function table(rows: AlarmRow[]): string {
  if (rows.length === 0) return 'no alarms configured\n';
  const lines = rows.map((r) => [
    `${r.device}/${r.point}/${r.alarm}`,
    r.severity ?? '',
    r.state + (r.shelvedUntil ? ` (shelved until ${new Date(r.shelvedUntil).toISOString()})` : ''),
    r.value === undefined || r.value === null ? '' : `value ${r.value}`,
    r.limit === undefined || r.limit === null ? '' : `limit ${r.limit}`,
  ]);
  const w = [0, 1].map((i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => [l[0]!.padEnd(w[0]!), l[1]!.padEnd(w[1]!), ...l.slice(2)].join('  ').trimEnd()).join('\n') + '\n';
}

interface ActionFlags {
  config?: string;
  dataDir?: string;
  device: string;
  point: string;
  alarm: string;
  note?: string;
  by?: string;
  id?: string;
  json?: boolean;
}

function action(alarms: Command, name: 'ack' | 'shelve' | 'unshelve', summary: string): Command {
  const cmd = alarms
    .command(name)
    .summary(summary)
    .option('-c, --config <file>', 'configuration file of the running gateway')
    .option('--data-dir <dir>', 'instead of -c: the running gateway\'s data directory (the demo: ./data/demo)')
    .requiredOption('--device <id>', 'device id')
    .requiredOption('--point <id>', 'point id')
    .requiredOption('--alarm <id>', "the alarm's id (its type when it has no id: high, low, ...)")
    .option('--note <text>', 'a note for the audit')
    .option('--by <name>', 'who, for the audit (default: $USER@local)')
    .option('--id <id>', 'command id (default: a new UUID)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `\nExample:\n  fieldgate alarms ${name} -c /etc/fieldgate/config.yaml --device face_gas --point ch4 --alarm stop_drilling${name === 'shelve' ? ' --duration 3600' : ''}${name === 'ack' ? ' --note "crew out"' : ''}`);
  return cmd;
}

export function register(program: Command): void {
  const alarms = program
    .command('alarms')
    .summary("list the running gateway's alarms, acknowledge or shelve one")
    .addHelpText(
      'after',
      `
Examples:
  fieldgate alarms list -c /etc/fieldgate/config.yaml
  fieldgate alarms ack -c /etc/fieldgate/config.yaml --device face --point ch4 --alarm high --note "crew out"
  fieldgate alarms shelve -c /etc/fieldgate/config.yaml --device face --point ch4 --alarm high --duration 3600`,
    );
  alarms
    .command('list')
    .summary('every configured alarm with its state (unacknowledged first)')
    .option('-c, --config <file>', 'configuration file of the running gateway')
    .option('--data-dir <dir>', 'instead of -c: the running gateway\'s data directory (the demo: ./data/demo)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  fieldgate alarms list -c /etc/fieldgate/config.yaml')
    .action(async (f: { config?: string; dataDir?: string; json?: boolean }) => {
      const { dataDir } = gatewayOf(f);
      let rows: AlarmRow[];
      try {
        const a = await controlRequest(controlSocketPath(dataDir), { op: 'alarms' });
        if (!a.ok) throw new Error(a.error);
        rows = (a.alarms ?? []) as AlarmRow[];
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      const rank = (s: string) => (s === 'unacknowledged' ? 0 : s === 'returned-unacknowledged' ? 1 : s === 'acknowledged' ? 2 : 3);
      rows.sort((a, b) => rank(a.state) - rank(b.state));
      process.stdout.write(f.json ? `${JSON.stringify(rows)}\n` : table(rows));
    });
  const send = async (name: 'ack' | 'shelve' | 'unshelve', f: ActionFlags, durationS?: number): Promise<void> => {
    const { dataDir } = gatewayOf(f);
    const c: Record<string, unknown> = { id: f.id ?? randomUUID(), action: name, device: f.device, point: f.point, alarm: f.alarm, by: operator(f.by) };
    if (f.note !== undefined) c.note = f.note;
    if (durationS !== undefined) c.durationS = durationS;
    await sendCommand(dataDir, 'alarm', c, f.json === true);
  };
  action(alarms, 'ack', 'acknowledge an alarm').action((f: ActionFlags) => send('ack', f));
  action(alarms, 'unshelve', 'end the shelving of an alarm now').action((f: ActionFlags) => send('unshelve', f));
  action(alarms, 'shelve', 'suppress an alarm for a bounded time (a sensor under repair)')
    .requiredOption('--duration <s>', 'seconds to shelve it for')
    .action((f: ActionFlags & { duration: string }) => {
      const s = Number(f.duration);
      if (!Number.isFinite(s) || s <= 0) throw new UserError(`--duration "${f.duration}" must be a number of seconds above 0`, 2);
      return send('shelve', f, s);
    });
}
