/**
 * `fieldgate command`: a write through the running gateway's guard (range, step, rate, expiry, audit), as the
 * cloud's cmd/write would go; `fieldgate write` stays the raw tool that talks to a unit directly.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { controlRequest, controlSocketPath, type ControlAnswer } from '../commands/control.js';
import type { CommandResult } from '../commands/types.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { pointFacts } from '../commands/facts.js';
import { UserError } from '../errors.js';
import { valueFlag } from './target.js';

/** The running gateway to talk to: by its configuration file, or (the demo) by its data directory. */
export function gatewayOf(f: { config?: string; dataDir?: string }): { dataDir: string; config?: Config } {
  if (f.config) {
    const config = loadConfig(f.config);
    return { dataDir: config.gateway.dataDir, config };
  }
  if (f.dataDir) return { dataDir: f.dataDir };
  throw new UserError('give -c FILE (the running gateway\'s configuration) or --data-dir DIR', 2);
}

/** Without the configuration the value is read by its look: on/off and true/false, a number, else text. */
function looseValue(raw: string): number | boolean | string {
  if (/^(true|on)$/i.test(raw)) return true;
  if (/^(false|off)$/i.test(raw)) return false;
  const n = Number(raw);
  return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
}

export function operator(by?: string): string {
  return by ?? `${process.env.SUDO_USER ?? process.env.USER ?? 'technician'}@local`;
}

/** Sends one command and prints its result; exit 1 unless it is done. */
export async function sendCommand(dataDir: string, kind: 'write' | 'alarm', command: Record<string, unknown>, json: boolean): Promise<CommandResult> {
  let a: ControlAnswer;
  try {
    a = await controlRequest(controlSocketPath(dataDir), { op: 'command', kind, command });
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  if (!a.ok) throw new UserError(`refused: ${a.error}`, 2);
  const r = a.result!;
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    const extra = r.status === 'done' ? [r.value !== undefined ? `value ${JSON.stringify(r.value)}` : '', r.readBack !== undefined ? `read back ${JSON.stringify(r.readBack)}` : ''].filter(Boolean).join(', ') : (r.reason ?? '');
    process.stdout.write(`${r.status}${extra ? `: ${extra}` : ''} (id ${r.id})\n`);
  }
  if (r.status !== 'done') process.exitCode = 1;
  return r;
}

export function register(program: Command): void {
  program
    .command('command')
    .summary('write a writable point through the running gateway (same guard and audit as the cloud)')
    .option('-c, --config <file>', 'configuration file of the running gateway')
    .option('--data-dir <dir>', 'instead of -c: the running gateway\'s data directory (the demo: ./data/demo)')
    .requiredOption('--device <id>', 'device id')
    .requiredOption('--point <id>', 'point id (it must have write: in the configuration)')
    .requiredOption('--value <v>', 'value in engineering units (1/0, on/off for a bool point)')
    .option('--ttl <s>', 'seconds the command stays valid', '30')
    .option('--id <id>', 'command id (default: a new UUID); the same id never runs twice')
    .option('--by <name>', 'who sends it, for the audit (default: $USER@local)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  fieldgate command -c /etc/fieldgate/config.yaml --device pump1 --point pressure_setpoint --value 3.2')
    .action(async (f: { config?: string; dataDir?: string; device: string; point: string; value: string; ttl: string; id?: string; by?: string; json?: boolean }) => {
      const { dataDir, config } = gatewayOf(f);
      // The type only reads the value; the guard in the gateway judges everything else.
      const type = config ? pointFacts(config).get(f.device)?.get(f.point)?.type : undefined;
      const ttlS = Number(f.ttl);
      if (!Number.isFinite(ttlS) || ttlS <= 0) throw new UserError(`--ttl "${f.ttl}" must be a number of seconds above 0`, 2);
      const value = type ? valueFlag(f.value, type) : looseValue(f.value);
      await sendCommand(dataDir, 'write', { id: f.id ?? randomUUID(), device: f.device, point: f.point, value, ttlS, by: operator(f.by) }, f.json === true);
    });
}
