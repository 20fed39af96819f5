/**
 * Watching the outbox's own file while it runs. Two things end its use as it is: corruption found by SQLite
 * (the process should end, so the next open checks and replaces the file) and the file unlinked under it (the
 * data directory deleted: SQLite would go on writing into a file nobody can ever read again). Either is told
 * once to the listeners, on a later tick so never inside a commit.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { OutboxError } from './errors.js';
import { DATA_FILE_MODE, DB_FILE, DELETED_FILE } from './open.js';

export class FileWatch {
  readonly path: string;
  /** The inode this connection writes: another one (or none) at the path means the file was deleted. */
  private readonly inode: number;
  private readonly listeners = new Set<(err: OutboxError) => void>();
  private failed: OutboxError | undefined;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    this.path = join(dir, DB_FILE);
    this.inode = statSync(this.path).ino;
  }

  on(listener: (err: OutboxError) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One stat per commit: cheap next to the commit's fsync. */
  check(): void {
    if (this.failed) return;
    const now = statSync(this.path, { throwIfNoEntry: false });
    if (now && now.ino === this.inode) return;
    const error = `the outbox file ${this.path} was deleted while running`;
    this.log.error({ path: this.path }, `${error}; it is recreated with a new epoch`);
    try {
      // The directory may be gone too; the marker lets the next open report why the epoch changed.
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(join(this.dir, DELETED_FILE), `${error}\n`, { mode: DATA_FILE_MODE });
    } catch {
      // Not writable: the next open says so in its own words.
    }
    this.fail(new OutboxError('OUTBOX_DELETED', error));
  }

  corrupt(err: unknown): void {
    this.fail(new OutboxError('OUTBOX_CORRUPT', `the outbox ${this.path} is corrupt: ${(err as Error).message}`, { cause: err }));
  }

  private fail(err: OutboxError): void {
    if (this.failed) return;
    this.failed = err;
    setImmediate(() => {
      for (const listener of this.listeners) listener(err);
    });
  }
}
