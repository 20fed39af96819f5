/** The `fieldgate` command: wiring only. Each command lives in its own file and registers itself. */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.js';
import { VERSION } from '../paths.js';
import { COMMANDS, registerCommands } from './commands.js';

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

const word = process.argv[2];
await registerCommands(program, word !== undefined && word in COMMANDS ? [word] : undefined);

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
