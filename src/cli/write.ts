import { Option, type Command } from 'commander';
import { encodeValue } from '../sources/modbus/decode.js';
import { describeTarget } from '../sources/modbus/link.js';
import type { WriteFc } from '../sources/modbus/types.js';
import { UserError } from '../errors.js';
import { TARGET_HELP, addLinkOptions, addValueOptions, intFlag, openLink, parseTarget, transactionError, valueFlag, valueSpec, type LinkFlags } from './target.js';

interface WriteFlags extends LinkFlags {
  unit: string;
  address: string;
  value: string;
  fc?: string;
  type: string;
  order: string;
  length: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('write')
    .summary('write a value (or several, comma-separated) to one unit')
    .argument('<target>', TARGET_HELP)
    .requiredOption('--unit <n>', 'unit id (slave address) 1-247')
    .requiredOption('--address <a>', '0-based protocol address')
    .requiredOption('--value <v>', 'value to write; several values of --type separated by commas')
    .addOption(new Option('--fc <fc>', 'function code: 5 one coil, 6 one register, 15 coils, 16 registers (default: the smallest that fits)').choices(['5', '6', '15', '16']));
  addValueOptions(cmd);
  addLinkOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  fieldgate write tcp://127.0.0.1:1502 --unit 1 --address 10 --value 1234
  fieldgate write /dev/ttyUSB0 --unit 3 --address 20 --type float32 --order CDAB --value 4.5
  fieldgate write tcp://127.0.0.1:1502 --unit 1 --fc 5 --address 100 --value 1`,
  );
  cmd.action(async (targetArg: string, flags: WriteFlags) => {
    const target = parseTarget(targetArg, flags);
    const unit = intFlag('unit', flags.unit, 0, 255);
    const address = intFlag('address', flags.address, 0, 65535);
    const coils = flags.fc === '5' || flags.fc === '15';
    const type = coils ? 'bool' : flags.type;
    const spec = { ...valueSpec({ ...flags, type }, coils ? 1 : 3), type: type as never };
    const rawValues = type === 'string' ? [flags.value] : flags.value.split(',');
    let words: number[] | boolean[];
    try {
      const parts = rawValues.map((v) => encodeValue(spec, valueFlag(v.trim(), type)));
      words = coils ? (parts.flat() as boolean[]) : (parts.flat() as number[]);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`--value: ${(err as Error).message}`, 2);
    }
    const fc = (flags.fc ? Number(flags.fc) : coils ? (words.length === 1 ? 5 : 15) : words.length === 1 ? 6 : 16) as WriteFc;
    if ((fc === 5 || fc === 6) && words.length !== 1) {
      throw new UserError(`fc ${fc} writes one ${fc === 5 ? 'coil' : 'register'}, but the value needs ${words.length}: use --fc ${fc === 5 ? 15 : 16}`, 2);
    }
    if (address + words.length > 65536) throw new UserError(`address ${address} + ${words.length} runs past 65535`, 2);
    const link = await openLink(target, flags);
    try {
      await link.write(unit, fc, address, words);
    } catch (err) {
      throw transactionError(`${describeTarget(target)} unit ${unit} fc ${fc} address ${address}`, err);
    } finally {
      await link.close();
    }
    process.stdout.write(`wrote ${words.length} ${coils ? 'coil' : 'register'}${words.length === 1 ? '' : 's'} at ${address} on unit ${unit} (fc ${fc})\n`);
  });
}
