/**
 * Line noise as RS-485 in a tunnel produces it: bursts of garbage bytes, cut-off lines, corrupted checksums
 * and a talker that forgets its delimiter. Deterministic for a seed, so a test run can be repeated.
 */

export const NOISE_KINDS = ['garbage', 'partial', 'checksum', 'overlong'] as const;
export type NoiseKind = (typeof NOISE_KINDS)[number];

export interface NoiseOptions {
  /** Share of lines preceded by a noise item (0-1). */
  rate?: number;
  /** Length of the over-long line, bytes (beyond the gateway's maxLineBytes, default 512). */
  overlongBytes?: number;
  seed?: number;
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The line with one character of its data changed, so its checksum (or its content) no longer fits. */
function corrupt(line: string, random: () => number): string {
  const digits = [...line].map((c, i) => (/\d/.test(c) ? i : -1)).filter((i) => i >= 0);
  // Change a digit of the data, not of a trailing checksum: the checksum then no longer matches.
  const data = digits.filter((i) => i < line.length - 5);
  const pick = data.length ? data : digits;
  if (pick.length === 0) return `${line}X`;
  const i = pick[Math.floor(random() * pick.length)]!;
  const d = (Number(line[i]) + 1 + Math.floor(random() * 8)) % 10;
  return `${line.slice(0, i)}${d}${line.slice(i + 1)}`;
}

export class NoiseSource {
  private readonly random: () => number;
  private next = 0;
  rate: number;
  readonly overlongBytes: number;
  readonly sent: Record<NoiseKind, number> = { garbage: 0, partial: 0, checksum: 0, overlong: 0 };

  constructor(opts: NoiseOptions = {}) {
    this.rate = opts.rate ?? 0.2;
    this.overlongBytes = opts.overlongBytes ?? 2048;
    this.random = seededRandom(opts.seed ?? 1);
  }

  /**
   * Bytes to put on the wire before `line` (which is sent whole after them), or none. The kinds take turns,
   * so every kind shows up even at a low rate.
   */
  before(line: string, delimiter: string): Buffer | undefined {
    if (this.rate <= 0 || this.random() >= this.rate) return undefined;
    const kind = NOISE_KINDS[this.next++ % NOISE_KINDS.length]!;
    this.sent[kind]++;
    switch (kind) {
      case 'garbage': {
        // Bytes a floating line or a baud-rate mismatch produce: mostly outside printable ASCII.
        const n = 3 + Math.floor(this.random() * 10);
        const bytes = Buffer.alloc(n);
        for (let i = 0; i < n; i++) bytes[i] = [0x00, 0x7f, 0xff, 0x1b, 0xfe, 0x80][Math.floor(this.random() * 6)]!;
        return Buffer.concat([bytes, Buffer.from(delimiter)]);
      }
      case 'partial':
        // The start of a line whose end was lost: it runs into the next line.
        return Buffer.from(line.slice(0, Math.max(1, Math.floor(line.length / 2))));
      case 'checksum':
        return Buffer.from(corrupt(line, this.random) + delimiter);
      case 'overlong':
        return Buffer.from(`${'~'.repeat(this.overlongBytes)}${delimiter}`);
    }
  }
}
