import { Option, type Command } from 'commander';
import { compileDecoder } from '../sources/modbus/decode.js';
import { describeTarget } from '../sources/modbus/link.js';
import { MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, isBitFc, pointWidth, type ReadFc } from '../sources/modbus/types.js';
import { UserError } from '../errors.js';
import { TARGET_HELP, addLinkOptions, addValueOptions, intFlag, openLink, parseTarget, transactionError, valueSpec, type LinkFlags } from './target.js';

interface ReadFlags extends LinkFlags {
  unit: string;
  address: string;
  fc: string;
  type: string;
  order: string;
  length: string;
  count: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('read')
    .summary('read registers or bits from one unit and decode them')
    .argument('<target>', TARGET_HELP)
    .requiredOption('--unit <n>', 'unit id (slave address) 1-247')
    .requiredOption('--address <a>', '0-based protocol address of the first register or bit')
    .addOption(new Option('--fc <fc>', 'function code: 1 coils, 2 discrete inputs, 3 holding, 4 input registers').choices(['1', '2', '3', '4']).default('3'))
    .option('--count <n>', 'how many values of --type to read, one after another', '1')
    .option('--json', 'print one JSON object with values and raw registers');
  addValueOptions(cmd);
  addLinkOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  fieldgate read tcp://192.168.1.10:502 --unit 1 --address 0 --count 10
  fieldgate read /dev/ttyUSB0 --baud 9600 --parity even --unit 3 --address 100 --type float32 --order CDAB
  fieldgate read rtu-over-tcp://10.0.0.5:4001 --unit 2 --fc 1 --address 0 --count 16 --json`,
  );
  cmd.action(async (targetArg: string, flags: ReadFlags) => {
    const target = parseTarget(targetArg, flags);
    const unit = intFlag('unit', flags.unit, 0, 255);
    const fc = Number(flags.fc) as ReadFc;
    const address = intFlag('address', flags.address, 0, 65535);
    const count = intFlag('count', flags.count, 1, MAX_BITS_PER_READ);
    const spec = valueSpec(flags, fc);
    const type = isBitFc(fc) ? 'bool' : spec.type;
    const width = pointWidth(fc, type, spec.length);
    const total = width * count;
    const max = isBitFc(fc) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
    if (total > max) throw new UserError(`${count} x ${type} needs ${total} ${isBitFc(fc) ? 'bits' : 'registers'}; one request reads at most ${max}`, 2);
    if (address + total > 65536) throw new UserError(`address ${address} + ${total} runs past 65535`, 2);

    const decode = compileDecoder({ ...spec, type });
    const link = await openLink(target, flags);
    let raw: number[] | boolean[];
    try {
      raw = await link.read(unit, fc, address, total);
    } catch (err) {
      throw transactionError(`${describeTarget(target)} unit ${unit} fc ${fc} address ${address}`, err);
    } finally {
      await link.close();
    }
    const values = Array.from({ length: count }, (_, i) => decode(raw, i * width));
    if (flags.json) {
      const out = { target: describeTarget(target), unit, fc, address, type, order: spec.order, count, values, registers: raw };
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    process.stdout.write(`${describeTarget(target)} unit ${unit} fc ${fc} ${count} x ${type}${isBitFc(fc) ? '' : ` ${spec.order}`}\n`);
    for (let i = 0; i < count; i++) {
      const words = raw.slice(i * width, (i + 1) * width);
      const hex = isBitFc(fc) ? '' : `  [${(words as number[]).map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ')}]`;
      process.stdout.write(`${String(address + i * width).padStart(5)}  ${JSON.stringify(values[i])}${hex}\n`);
    }
  });
}
