/**
 * The gateway as it runs in the field: `fieldgate run -c FILE` in its own process (the bundle that ships, unless
 * told otherwise), configured by a YAML file, with a fresh data directory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnChild, type Child } from '../peers.js';
import { shipped, type Entry } from './bundle.js';
import { fieldgateYaml, type FieldgateFileOptions } from './workload.js';

export interface RunningGateway {
  pid: number;
  child: Child;
  /** SIGTERM, as systemd stops it; a clean stop publishes what the link takes in 5 s. */
  stop(): Promise<void>;
}

/**
 * `nodeArgs` go to node before the entry (the shipped bundle, or the sources through tsx); `prepare` gets the data
 * directory before the gateway starts (a backlog written into its outbox).
 */
export function startFieldgate(o: Omit<FieldgateFileOptions, 'dataDir'>, nodeArgs: string[] = [], entry: Entry = shipped(), prepare?: (dataDir: string) => void): RunningGateway {
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-gw-'));
  const file = join(dir, 'config.yaml');
  prepare?.(join(dir, 'data'));
  writeFileSync(file, fieldgateYaml({ ...o, dataDir: join(dir, 'data') }));
  const child = spawnChild(process.execPath, [...nodeArgs, ...entry.args, 'run', '-c', file, '--log-level', 'warn'], 'keep', entry.env);
  return {
    pid: child.pid,
    child,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
