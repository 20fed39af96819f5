/**
 * `npm run bench [-- NAME...] [-- --write]`: runs each benchmark scenario (one file per scenario, each exporting
 * `run(): Promise<string>` that returns markdown) and prints the results; `--write` also stores them in
 * docs/BENCHMARKS.md between markers, with the machine and the command.
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';

const SCENARIOS: Record<string, () => Promise<{ run(): Promise<string> }>> = {
  planner: () => import('./planner.js'),
  'modbus-tcp': () => import('./modbus-tcp.js'),
  'rtu-wire': () => import('./rtu-wire.js'),
  outbox: () => import('./outbox.js'),
  'uplink-drain': () => import('./uplink-drain.js'),
  e2e: () => import('./e2e.js'),
  latency: () => import('./latency.js'),
  alarm: () => import('./alarm.js'),
  'tags-10k': () => import('./tags-10k.js'),
  memory: () => import('./memory.js'),
  footprint: () => import('./footprint.js'),
  'payload-bytes': () => import('./payload-bytes.js'),
  nodered: () => import('./nodered.js'),
  commands: () => import('./commands.js'),
  compression: () => import('./compression.js'),
  'metered-day': () => import('./metered-day.js'),
  sparkplug: () => import('./sparkplug.js'),
};

const args = process.argv.slice(2);
const write = args.includes('--write');
const names = args.filter((a) => !a.startsWith('--'));
const selected = names.length > 0 ? names : Object.keys(SCENARIOS);
for (const n of selected) {
  if (!SCENARIOS[n]) {
    process.stderr.write(`unknown benchmark "${n}"; choose from: ${Object.keys(SCENARIOS).join(', ')}\n`);
    process.exit(2);
  }
}

const sections: string[] = [];
for (const name of selected) {
  process.stderr.write(`running ${name}...\n`);
  const mod = await SCENARIOS[name]!();
  const md = await mod.run();
  process.stdout.write(`\n## ${name}\n\n${md}\n`);
  sections.push(`<!-- bench:${name} -->\n## ${name}\n\n${md.trim()}\n<!-- /bench:${name} -->`);
}

if (write) {
  const file = new URL('../docs/BENCHMARKS.md', import.meta.url);
  let doc = await readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  for (const [i, name] of selected.entries()) {
    const block = sections[i]!.replace('\n\n', `\n\nMeasured on ${machine} with \`npm run bench -- ${name}\`.\n\n`);
    const re = new RegExp(`<!-- bench:${name} -->[\\s\\S]*?<!-- /bench:${name} -->`);
    doc = re.test(doc) ? doc.replace(re, block) : `${doc.trimEnd()}\n\n${block}\n`;
  }
  await writeFile(file, doc);
  process.stderr.write(`wrote ${file.pathname}\n`);
}
