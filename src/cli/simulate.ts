/** `fieldgate simulate`: serves a scenario's simulated devices until SIGINT/SIGTERM. */
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import { createLogger } from '../log.js';
import { describeScenario } from '../sim/describe.js';
import { SCENARIO_NAMES, type ScenarioName } from '../sim/scenarios/index.js';
import { DEFAULT_SIM_PORT, type SerialOptions } from '../sim/server.js';
import { DEFAULT_LINE_PORTS, startSite } from '../sim/site.js';

const EXAMPLES = `
Examples:
  $ fieldgate simulate --scenario village-water
      Modbus TCP on 127.0.0.1:${DEFAULT_SIM_PORT}, the address config/village-water.yaml reads.
  $ fieldgate simulate --scenario tunnel --tcp 0
      Any free port; the port in use is printed.
  $ socat pty,raw,echo=0,link=/tmp/simA pty,raw,echo=0,link=/tmp/gwA &
  $ fieldgate simulate --scenario village-water --serial /tmp/simA --baud 19200 --parity even
      Modbus RTU on one end of a pty pair; point a gateway's rtu bus at /tmp/gwA.
  $ kill -USR1 <pid>    start the scenario's event (village-water: pipe burst, tunnel: gas excursion)
  $ kill -USR2 <pid>    clear it (writing coil 100 of unit 1 = 1 / 0 does the same over Modbus)

TCP is served unless only --serial is given. Stop with Ctrl-C or SIGTERM.`;

function intIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer ${min}-${max}.`);
    return n;
  };
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number above 0.');
  return n;
}

interface SimulateFlags {
  scenario: ScenarioName;
  tcp?: number;
  host: string;
  serial?: string;
  baud: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: '7' | '8';
  stopBits: '1' | '2';
  speed: number;
  seed?: number;
  gasPort: number;
  laserPort: number;
}

function stamp(): string {
  return new Date().toTimeString().slice(0, 8);
}

async function run(flags: SimulateFlags): Promise<void> {
  const serial: SerialOptions | undefined = flags.serial
    ? { path: flags.serial, baudRate: flags.baud, parity: flags.parity, dataBits: Number(flags.dataBits) as 7 | 8, stopBits: Number(flags.stopBits) as 1 | 2 }
    : undefined;
  const tcpPort = flags.tcp ?? (serial ? undefined : DEFAULT_SIM_PORT);
  const started = Date.now();
  // --speed runs the simulated day faster, from the real time of day at start.
  const clock = flags.speed === 1 ? Date.now : () => started + (Date.now() - started) * flags.speed;
  const site = await startSite({
    scenario: flags.scenario,
    host: flags.host,
    tcpPort,
    serial,
    linePorts: { gas: flags.gasPort, laser: flags.laserPort },
    clock,
    seed: flags.seed,
    log: createLogger('info'),
  });
  const sim = site.modbus;
  const scenario = sim.simulator.scenario;

  const out = (line: string) => process.stdout.write(`${line}\n`);
  for (const line of describeScenario(scenario)) out(line);
  out('');
  if (sim.tcpPort !== undefined) {
    out(`Serving Modbus TCP on ${sim.tcpHost}:${sim.tcpPort}; unknown units answer exception 11.`);
    if (sim.tcpPort === DEFAULT_SIM_PORT) out(`  config/${flags.scenario}.yaml reads this address.`);
  }
  if (serial) {
    const frame = `${flags.dataBits}${flags.parity[0].toUpperCase()}${flags.stopBits}`;
    out(`Serving Modbus RTU on ${serial.path} at ${serial.baudRate} baud ${frame}; unknown units stay silent.`);
  }
  if (site.lines.gas) out(`Gas detector (NMEA sentences, one a second; query "#01\\r") on tcp ${flags.host}:${site.lines.gas.tcpPort}.`);
  if (site.lines.laser) out(`Convergence laser (queries "D\\r", "DT\\r", "J\\r") on tcp ${flags.host}:${site.lines.laser.tcpPort}.`);
  if (flags.speed !== 1) out(`Time runs ${flags.speed}x faster than real time.`);
  out('Ctrl-C or SIGTERM stops.');

  sim.simulator.on('event', (active, by) => {
    out(`${stamp()} ${scenario.event} ${active ? 'started' : 'cleared'} by ${by === 'coil' ? 'a coil 100 write' : 'signal'}`);
  });
  const start = () => site.trigger('start');
  const clear = () => site.trigger('clear');
  process.on('SIGUSR1', start);
  process.on('SIGUSR2', clear);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.off('SIGUSR1', start);
  process.off('SIGUSR2', clear);
  await site.close();
  out(`${stamp()} stopped (${signal})`);
}

export function register(program: Command): void {
  program
    .command('simulate')
    .summary('serve simulated field devices (village water supply, tunnel face)')
    .description('Serve simulated field devices: Modbus over TCP and/or RTU, and for the tunnel the line-protocol gas detector and convergence laser over TCP')
    .addOption(new Option('--scenario <name>', 'what to simulate').choices(SCENARIO_NAMES).makeOptionMandatory())
    .option('--tcp <port>', `Modbus TCP port, 0 = any free port (default ${DEFAULT_SIM_PORT} when TCP is served)`, intIn('port', 0, 65535))
    .option('--host <address>', 'address to listen on for TCP', '127.0.0.1')
    .option('--serial <path>', 'also (or only) serve Modbus RTU on this serial device or pty')
    .option('--baud <rate>', 'serial baud rate', intIn('baud rate', 300, 4_000_000), 9600)
    .addOption(new Option('--parity <parity>', 'serial parity').choices(['none', 'even', 'odd']).default('none'))
    .addOption(new Option('--data-bits <bits>', 'serial data bits').choices(['7', '8']).default('8'))
    .addOption(new Option('--stop-bits <bits>', 'serial stop bits').choices(['1', '2']).default('1'))
    .option('--speed <factor>', 'run simulated time this many times faster (60: a day in 24 minutes)', positive, 1)
    .option('--seed <n>', 'seed of the sensor noise, for repeatable runs', intIn('seed', 0, 2 ** 31 - 1))
    .option('--gas-port <port>', 'tunnel: TCP port of the line-protocol gas detector (0 = any free)', intIn('port', 0, 65535), DEFAULT_LINE_PORTS.gas)
    .option('--laser-port <port>', 'tunnel: TCP port of the convergence laser (0 = any free)', intIn('port', 0, 65535), DEFAULT_LINE_PORTS.laser)
    .addHelpText('after', EXAMPLES)
    .exitOverride((err) => {
      // Usage mistakes exit 2, like other command-line tools; help and version keep their 0.
      if (err.exitCode !== 0) throw new CommanderError(2, err.code, err.message);
      throw err;
    })
    .action((flags: SimulateFlags) => run(flags));
}
