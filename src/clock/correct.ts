/**
 * Applying a clock correction to the samples already in the outbox. A gateway without a link (a tunnel face)
 * may hold days of untrusted samples when trust arrives, millions of rows: they are corrected in windows of
 * seqs, one transaction each, yielding to the event loop in between so polling and the uplink go on.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** What the correction needs of the outbox (Outbox implements it). */
export interface RetimeTarget {
  /** Shifts untrusted samples with seq in [fromSeq, toSeq] by deltaMs and clears their flag; returns the rows changed. */
  retime(fromSeq: number, toSeq: number, deltaMs: number): number;
  maxSeq(): number | null;
}

/** Seqs per step: about 50k rows, a few hundred ms on an SD card. */
export const RETIME_WINDOW = 50_000;

/**
 * Corrects every untrusted sample from `fromSeq` on, up to the newest stored seq (which may grow meanwhile:
 * samples added after trust arrived carry no flag and are left alone). Stops early, leaving the rest flagged,
 * when `signal` aborts; `complete` says whether it got to the end.
 */
export async function retimeStored(
  target: RetimeTarget,
  fromSeq: number,
  deltaMs: number,
  signal?: AbortSignal,
  window = RETIME_WINDOW,
): Promise<{ rows: number; complete: boolean }> {
  let rows = 0;
  for (let from = fromSeq; ; from += window) {
    if (signal?.aborted) return { rows, complete: false };
    rows += target.retime(from, from + window - 1, deltaMs);
    const max = target.maxSeq();
    if (max === null || from + window > max) return { rows, complete: true };
    await nextTurn();
  }
}
