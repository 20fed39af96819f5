/**
 * A Mosquitto that can be taken down and brought back on the same port, with persistence, so a subscriber's
 * QoS 1 session (and what was queued for it) survives the outage: what the subscriber counts afterwards is what
 * the publisher delivered, not what the subscriber missed while reconnecting.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, spawnChild, which, type Child } from '../peers.js';

export interface Broker {
  readonly url: string;
  readonly port: number;
  /** The running broker's pid (changes at every up()). */
  pid(): number;
  /** SIGTERM: the broker writes its persistence file and closes every connection. */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true)).once('error', () => done(false));
  });
}

/** `lines`: more mosquitto.conf lines (e.g. `set_tcp_nodelay true`). */
export async function startBroker(lines: readonly string[] = []): Promise<Broker> {
  const exe = which('mosquitto');
  if (!exe) throw new Error('mosquitto not found on PATH (Debian package mosquitto)');
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-broker-'));
  const conf = join(dir, 'mosquitto.conf');
  let port = 0;
  let child: Child | undefined;

  const launch = async (): Promise<boolean> => {
    child = spawnChild(exe, ['-c', conf]);
    const deadline = Date.now() + 5000;
    while (child.proc.exitCode === null && Date.now() < deadline) {
      if (await canConnect(port)) return true;
      await sleep(25);
    }
    await child.stop();
    return false;
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    // No limit on queued messages: a slow subscriber must get every message late, not lose the excess.
    const settings = ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 0', 'max_queued_messages 0'];
    settings.push('log_dest stderr', 'log_type error', 'log_type warning', ...lines);
    if (process.getuid?.() === 0) settings.push(`user ${userInfo().username}`);
    settings.push(`listener ${port} 127.0.0.1`, 'allow_anonymous true');
    writeFileSync(conf, `${settings.join('\n')}\n`);
    if (await launch()) break;
    // Another process may have taken the port between freePort() and the bind.
    if (attempt === 4) throw new Error(`mosquitto did not start: ${child?.output()}`);
  }

  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pid: () => child?.pid ?? -1,
    async down() {
      await child?.stop();
    },
    async up() {
      for (let attempt = 0; attempt < 20; attempt++) {
        if (await launch()) return;
        await sleep(250); // the old socket may linger in TIME_WAIT for a moment
      }
      throw new Error(`mosquitto did not come back on port ${port}: ${child?.output()}`);
    },
    async stop() {
      await child?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
