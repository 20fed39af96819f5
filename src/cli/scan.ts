import { Option, type Command } from 'commander';
import type { ModbusError } from '../sources/modbus/errors.js';
import { describeTarget } from '../sources/modbus/link.js';
import type { ReadFc } from '../sources/modbus/types.js';
import { UserError } from '../errors.js';
import { TARGET_HELP, addLinkOptions, intFlag, openLink, parseTarget, type LinkFlags } from './target.js';

interface ScanFlags extends LinkFlags {
  units: string;
  address: string;
  fc: string;
  json?: boolean;
}

/** "1-10,20,30-32" to a sorted list of unit ids. */
export function parseUnits(raw: string): number[] {
  const units = new Set<number>();
  for (const part of raw.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UserError(`--units "${raw}": use a list like 1-247 or 1,2,10-20`, 2);
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : from;
    if (from < 1 || to > 247 || from > to) throw new UserError(`--units "${part.trim()}": unit ids are 1-247, low to high`, 2);
    for (let u = from; u <= to; u++) units.add(u);
  }
  return [...units].sort((a, b) => a - b);
}

export function register(program: Command): void {
  const cmd = program
    .command('scan')
    .summary('find the units that answer on a bus')
    .argument('<target>', TARGET_HELP)
    .option('--units <list>', 'unit ids to try, e.g. 1-247 or 1,2,10-20', '1-247')
    .option('--address <a>', 'address to read from each unit', '0')
    .addOption(new Option('--fc <fc>', 'function code to read with').choices(['1', '2', '3', '4']).default('3'))
    .option('--json', 'print one JSON object per answering unit');
  addLinkOptions(cmd, '200');
  cmd.addHelpText(
    'after',
    `
A unit "answers" when it sends any reply, an exception included (it is there, it just has no such register),
except exceptions 10 and 11, which a TCP gateway sends for a unit that is not there.
A scan of 247 units at --timeout 200 takes under a minute when nothing answers.

Examples:
  fieldgate scan /dev/ttyUSB0 --baud 9600 --parity even
  fieldgate scan tcp://192.168.1.20:502 --units 1-10 --fc 4`,
  );
  cmd.action(async (targetArg: string, flags: ScanFlags) => {
    const target = parseTarget(targetArg, flags);
    const units = parseUnits(flags.units);
    const address = intFlag('address', flags.address, 0, 65535);
    const fc = Number(flags.fc) as ReadFc;
    const tty = process.stderr.isTTY === true;
    let link = await openLink(target, flags);
    const found: number[] = [];
    try {
      for (const [i, unit] of units.entries()) {
        if (tty) process.stderr.write(`\rscanning unit ${unit} (${i + 1}/${units.length}), ${found.length} found `);
        let answer: string | undefined;
        let detail: Record<string, unknown> = {};
        try {
          const data = await link.read(unit, fc, address, 1);
          answer = `answers: ${JSON.stringify(data[0])} at ${address}`;
          detail = { value: data[0] };
        } catch (err) {
          const e = err as ModbusError;
          // 10 and 11 come from a TCP gateway saying the unit behind it is absent or silent.
          if (e.kind === 'exception' && e.code !== 10 && e.code !== 11) {
            answer = `answers with ${e.message}`;
            detail = { exception: e.code, message: e.message };
          } else if (e.linkLost) {
            // A TCP gateway may drop the connection on an unknown unit: reopen and go on.
            await link.close();
            link = await openLink(target, flags);
          }
        }
        if (answer !== undefined) {
          found.push(unit);
          if (tty) process.stderr.write('\r\x1b[K');
          process.stdout.write(flags.json ? `${JSON.stringify({ unit, fc, address, ...detail })}\n` : `unit ${unit}: ${answer}\n`);
        }
      }
    } finally {
      await link.close();
      if (tty) process.stderr.write('\r\x1b[K');
    }
    process.stderr.write(`${describeTarget(target)}: ${found.length} of ${units.length} units answered${found.length ? ` (${found.join(', ')})` : ''}\n`);
  });
}
