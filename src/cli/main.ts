/** The `fieldgate` command: wiring only. Each command lives in its own file and registers itself. */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.js';
import { VERSION } from '../version.js';
import * as validate from './validate.js';
import * as run from './run.js';
import * as read from './read.js';
import * as write from './write.js';
import * as scan from './scan.js';
import * as ports from './ports.js';
import * as simulate from './simulate.js';
import * as buffer from './buffer.js';
import * as tail from './tail.js';
import * as demo from './demo.js';

// `fieldgate tail ... | head` closes our stdout: that is the reader being done, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('fieldgate')
  .description('Edge gateway: Modbus RTU/TCP and line sensors to MQTT, with a durable store-and-forward buffer')
  .version(VERSION)
  .showHelpAfterError('(add --help for usage and examples)')
  .exitOverride();

for (const command of [validate, run, read, write, scan, ports, simulate, buffer, tail, demo]) command.register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof UserError) {
    process.stderr.write(`fieldgate: ${err.message}\n`);
    for (const line of err.details) process.stderr.write(`${line}\n`);
    process.exit(err.exitCode);
  }
  throw err;
}
