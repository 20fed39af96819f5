/** Calendar dates as the configuration writes them (gateway.clock.minValidDate); the clock guard reads them too. */

/** "2025-01-01" as ms since the epoch (UTC midnight); NaN unless it is a real calendar date. */
export function parseDate(date: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return NaN;
  const ms = Date.parse(`${date}T00:00:00Z`);
  // Date.parse rolls 2025-02-30 over into March; a round trip catches that.
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === date ? ms : NaN;
}
