/**
 * Where pushed configurations live on the device: `{dataDir}/config/` (the service may write only its data
 * directory; /etc/fieldgate stays the technician's). Each accepted version is a file `v{N}.yaml`, and
 * `state.json` says which one runs and whether it is still on probation. Every write is a new file fsync'd and
 * renamed over the old, so a power cut leaves the old state or the new one, never half of either.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigReport } from '../events.js';

export interface VersionRef {
  version: number;
  /** textHash of the file. */
  hash: string;
}

export type { ConfigReport } from '../events.js';

export interface RemoteState {
  /** textHash of the local file when this state was written: a local file edited since wins over pushed versions. */
  base: string;
  /** The pushed version running; absent: the local file runs. */
  applied?: VersionRef;
  /** A change on probation: applied, not yet proven healthy. `starts`: gateway starts since it was applied. */
  pending?: VersionRef & { previous?: VersionRef; since: number; starts: number };
  /** The highest version taken or refused: a desired version at or below it is ignored. */
  seen: number;
  /** The last report, published retained at every connect until a newer one replaces it. */
  report?: ConfigReport;
}

export class ConfigStore {
  constructor(readonly dir: string) {}

  static forDataDir(dataDir: string): ConfigStore {
    return new ConfigStore(join(dataDir, 'config'));
  }

  /** The state, or undefined when there is none or it cannot be read (then the local file runs). */
  readState(): RemoteState | undefined {
    try {
      const s = JSON.parse(readFileSync(join(this.dir, 'state.json'), 'utf8')) as RemoteState;
      if (typeof s.base !== 'string' || !Number.isSafeInteger(s.seen)) return undefined;
      return s;
    } catch {
      return undefined;
    }
  }

  writeState(s: RemoteState): void {
    this.atomic('state.json', `${JSON.stringify(s, null, 1)}\n`);
  }

  saveVersion(version: number, text: string): void {
    this.atomic(`v${version}.yaml`, text);
  }

  readVersion(version: number): string | undefined {
    try {
      return readFileSync(this.pathOf(version), 'utf8');
    } catch {
      return undefined;
    }
  }

  pathOf(version: number): string {
    return join(this.dir, `v${version}.yaml`);
  }

  /** Versions on disk, oldest first. */
  versions(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .map((n) => /^v(\d+)\.yaml$/.exec(n)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .filter(Number.isSafeInteger)
      .sort((a, b) => a - b);
  }

  /** Keeps the newest `keep` versions and every version named in `protect`. */
  prune(keep: number, protect: readonly number[]): void {
    const all = this.versions();
    for (const v of all.slice(0, Math.max(0, all.length - keep))) {
      if (!protect.includes(v)) rmSync(this.pathOf(v), { force: true });
    }
  }

  private atomic(name: string, text: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.${name}.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, name));
    // The rename itself must reach the disk before the change counts as staged.
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
