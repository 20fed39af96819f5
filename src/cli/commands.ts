/**
 * Every `fieldgate` command, by name. Commands load on demand: `fieldgate read` need not load the MQTT client,
 * SQLite and the config parser, which halves its start-up. `--help` and unknown words load them all.
 */
import type { Command } from 'commander';

export const COMMANDS: Record<string, () => Promise<{ register(program: Command): void }>> = {
  run: () => import('./run.js'),
  validate: () => import('./validate.js'),
  read: () => import('./read.js'),
  write: () => import('./write.js'),
  command: () => import('./command.js'),
  alarms: () => import('./alarms.js'),
  config: () => import('./config.js'),
  scan: () => import('./scan.js'),
  ports: () => import('./ports.js'),
  simulate: () => import('./simulate.js'),
  tail: () => import('./tail.js'),
  buffer: () => import('./buffer.js'),
  demo: () => import('./demo.js'),
};

/** Registers the named commands (all of them by default) on the program. */
export async function registerCommands(program: Command, names: string[] = Object.keys(COMMANDS)): Promise<void> {
  for (const name of names) (await COMMANDS[name]!()).register(program);
}
