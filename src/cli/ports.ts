import { readdir, realpath } from 'node:fs/promises';
import type { Command } from 'commander';
import { SerialPort } from 'serialport';

interface PortInfo {
  path: string;
  manufacturer?: string;
  serialNumber?: string;
  vendorId?: string;
  productId?: string;
  byId?: string;
}

/** Without udev (containers, minimal images) serialport cannot list: look at /dev ourselves. */
async function fromDev(): Promise<PortInfo[]> {
  const names = await readdir('/dev').catch(() => [] as string[]);
  const wanted = /^(ttyUSB\d+|ttyACM\d+|ttyAMA\d+|ttyS[0-3]|ttyXRUSB\d+|serial\d+|ttymxc\d+)$/;
  return names.filter((n) => wanted.test(n)).sort().map((n) => ({ path: `/dev/${n}` }));
}

/** Stable names survive replugging; technicians should put these in the config. */
async function byIdLinks(): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  const dir = '/dev/serial/by-id';
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    const target = await realpath(`${dir}/${n}`).catch(() => undefined);
    if (target) links.set(target, `${dir}/${n}`);
  }
  return links;
}

export async function listPorts(): Promise<{ ports: PortInfo[]; source: string }> {
  let ports: PortInfo[];
  let source = 'serialport';
  try {
    ports = (await SerialPort.list()).map((p) => ({
      path: p.path,
      manufacturer: p.manufacturer,
      serialNumber: p.serialNumber,
      vendorId: p.vendorId,
      productId: p.productId,
    }));
  } catch {
    ports = await fromDev();
    source = '/dev (no udev)';
  }
  const links = await byIdLinks();
  for (const p of ports) p.byId = links.get(p.path);
  return { ports, source };
}

export function register(program: Command): void {
  program
    .command('ports')
    .summary('list serial ports (USB RS-485 adapters, on-board UARTs)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nUse the /dev/serial/by-id/... name in the config when there is one: it survives replugging.\n\nExample:\n  fieldgate ports')
    .action(async (flags: { json?: boolean }) => {
      const { ports, source } = await listPorts();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ source, ports })}\n`);
        return;
      }
      if (ports.length === 0) {
        process.stdout.write(`no serial ports found (looked via ${source}); plug in the adapter and check dmesg\n`);
        return;
      }
      for (const p of ports) {
        const about = [p.manufacturer, p.vendorId && p.productId ? `${p.vendorId}:${p.productId}` : undefined, p.serialNumber && `serial ${p.serialNumber}`]
          .filter(Boolean)
          .join(', ');
        process.stdout.write(`${p.path}${about ? `  ${about}` : ''}${p.byId ? `\n    ${p.byId}` : ''}\n`);
      }
    });
}
