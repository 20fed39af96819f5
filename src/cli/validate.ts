/** `fieldgate validate`: check a configuration file without touching any port, broker or database. */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';

export function register(program: Command): void {
  program
    .command('validate')
    .description('check a configuration file and list every error with its line and column')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .addHelpText(
      'after',
      `
Prints "FILE: ok (...)" and exits 0, or prints one line per error (the first 100, then a count) and exits 2:
  FILE:LINE:COL key.path: message

Examples:
  $ fieldgate validate -c fieldgate.yaml
  fieldgate.yaml: ok (1 bus, 2 devices, 14 points)

  $ fieldgate validate -c broken.yaml
  fieldgate: broken.yaml: invalid configuration, 1 error
  broken.yaml:7:5 buses[0].baudrate: unknown key "baudrate" (did you mean "baudRate"?)`,
    )
    .action((options: { config: string }) => {
      const config = loadConfig(options.config);
      const points = config.devices.reduce((sum, device) => sum + device.points.length, 0);
      const counts = [count(config.buses.length, 'bus', 'buses'), count(config.devices.length, 'device', 'devices'), count(points, 'point', 'points')];
      process.stdout.write(`${options.config}: ok (${counts.join(', ')})\n`);
    });
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
