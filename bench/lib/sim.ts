/**
 * The Modbus TCP peer of the end-to-end benchmarks, in its own process so its CPU is its own: the simulator
 * serving the synthetic 1,000-point map (every address of units 1-4 answers), or the bare responder that answers
 * the same words at once. Both come from bench/modbus-tcp.ts's serve mode, so every scenario polls one map.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type SimKind = 'synthetic' | 'bare';

export interface Sim {
  kind: SimKind;
  port: number;
  pid: number;
  /** Sets a holding register of the synthetic map; resolves with the simulator's clock (ms since the epoch) at the change. */
  set(unit: number, address: number, value: number): Promise<number>;
  stop(): Promise<void>;
}

const SERVE = fileURLToPath(new URL('../modbus-tcp.ts', import.meta.url));

export async function startSim(kind: SimKind): Promise<Sim> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVE, '--serve', kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const kill = () => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL');
  process.once('exit', kill);
  const setWaiters: Array<(at: number) => void> = [];
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('simulator did not start within 20 s')), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const set = /^SET (\d+)$/.exec(line);
      if (set) setWaiters.shift()?.(Number(set[1]));
      const m = /^READY (\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`simulator exited with ${code}`)));
  });
  return {
    kind,
    port,
    pid: child.pid!,
    set(unit, address, value) {
      return new Promise((ok) => {
        setWaiters.push(ok);
        child.stdin!.write(`set ${unit} ${address} ${value}\n`);
      });
    },
    async stop() {
      child.stdin?.end(); // the serve mode's own stop signal; the kill covers a hang
      const late = setTimeout(kill, 3000);
      await exited;
      clearTimeout(late);
      process.removeListener('exit', kill);
    },
  };
}
