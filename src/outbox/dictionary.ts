/**
 * String dictionaries (series = device/point pairs, reasons) mapped to small integer ids. Ids are immutable
 * (AUTOINCREMENT, never reused), so both the writer's name -> id cache and any reader's id -> name cache stay
 * valid for the life of the database; a reader that meets an unknown id reloads only the ids above its highest.
 */
import type Database from 'better-sqlite3';

export class Dictionaries {
  private readonly seriesIds = new Map<string, Map<string, number>>();
  private readonly reasonIds = new Map<string, number>();
  /** id -> name, dense arrays: decoding a row is two array loads. */
  readonly device: string[] = [];
  readonly point: string[] = [];
  readonly reason: string[] = [];
  private maxSeries = 0;
  private maxReason = 0;
  /** Entries inserted by the open transaction; forgotten again if it rolls back. */
  private added: Array<() => void> = [];

  private readonly loadSeries: Database.Statement<[number]>;
  private readonly loadReasons: Database.Statement<[number]>;
  private readonly insertSeries?: Database.Statement<[string, string]>;
  private readonly insertReason?: Database.Statement<[string]>;

  constructor(db: Database.Database, writable: boolean) {
    this.loadSeries = db.prepare('SELECT id, device, point FROM series WHERE id > ? ORDER BY id').raw();
    this.loadReasons = db.prepare('SELECT id, text FROM reason WHERE id > ? ORDER BY id').raw();
    if (writable) {
      this.insertSeries = db.prepare('INSERT INTO series (device, point) VALUES (?, ?)');
      this.insertReason = db.prepare('INSERT INTO reason (text) VALUES (?)');
    }
    this.reload();
  }

  /** Series known (device/point pairs). */
  get size(): number {
    return this.device.length;
  }

  /** Loads ids created since the last load (by this or another connection). */
  reload(): void {
    for (const [id, device, point] of this.loadSeries.iterate(this.maxSeries) as Iterable<[number, string, string]>) {
      this.remember(id, device, point);
    }
    for (const [id, text] of this.loadReasons.iterate(this.maxReason) as Iterable<[number, string]>) {
      this.reasonIds.set(text, id);
      this.reason[id] = text;
      if (id > this.maxReason) this.maxReason = id;
    }
  }

  private remember(id: number, device: string, point: string): void {
    let byPoint = this.seriesIds.get(device);
    if (!byPoint) this.seriesIds.set(device, (byPoint = new Map()));
    byPoint.set(point, id);
    this.device[id] = device;
    this.point[id] = point;
    if (id > this.maxSeries) this.maxSeries = id;
  }

  /** Series id, inserting the pair when new. Must run inside the commit transaction. */
  seriesId(device: string, point: string): number {
    const known = this.seriesIds.get(device)?.get(point);
    if (known !== undefined) return known;
    const id = Number(this.insertSeries!.run(device, point).lastInsertRowid);
    this.remember(id, device, point);
    this.added.push(() => {
      this.seriesIds.get(device)?.delete(point);
      delete this.device[id];
      delete this.point[id];
    });
    return id;
  }

  reasonId(text: string): number {
    const known = this.reasonIds.get(text);
    if (known !== undefined) return known;
    const id = Number(this.insertReason!.run(text).lastInsertRowid);
    this.reasonIds.set(text, id);
    this.reason[id] = text;
    if (id > this.maxReason) this.maxReason = id;
    this.added.push(() => {
      this.reasonIds.delete(text);
      delete this.reason[id];
    });
    return id;
  }

  /** The transaction committed: its new entries are real. */
  keep(): void {
    this.added = [];
  }

  /** The transaction rolled back: its ids no longer exist and will be handed out again. */
  forget(): void {
    for (const undo of this.added) undo();
    this.added = [];
  }

  /** After unused reasons were deleted: forget every reason and load the survivors. */
  resetReasons(): void {
    this.reasonIds.clear();
    this.reason.length = 0;
    this.maxReason = 0;
    this.reload();
  }

  /** Names for ids seen in rows; reloads once when a row carries an id created after the last load. */
  ensure(sid: number, rid: number | null): void {
    if (this.device[sid] === undefined || (rid !== null && this.reason[rid] === undefined)) this.reload();
  }
}
