/** The `fieldgate` command: wiring only. Each command lives in its own file and registers itself. */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.js';
import { VERSION } from '../paths.js';

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

/**
 * Commands load on demand: `fieldgate read` need not load the MQTT client, SQLite and the config parser, which
 * halves its start-up. `--help` and unknown words load them all.
 */
const COMMANDS: Record<string, () => Promise<{ register(program: Command): void }>> = {
  run: () => import('./run.js'),
  validate: () => import('./validate.js'),
  read: () => import('./read.js'),
  write: () => import('./write.js'),
  scan: () => import('./scan.js'),
  ports: () => import('./ports.js'),
  simulate: () => import('./simulate.js'),
  tail: () => import('./tail.js'),
  buffer: () => import('./buffer.js'),
  demo: () => import('./demo.js'),
};
const word = process.argv[2];
const wanted = word !== undefined && word in COMMANDS ? [word] : Object.keys(COMMANDS);
for (const name of wanted) (await COMMANDS[name]!()).register(program);

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
