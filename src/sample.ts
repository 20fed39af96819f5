/** One reading of one point, as it leaves a source. The unit of everything downstream. */
export type Quality = 'good' | 'bad' | 'uncertain';

export type SampleValue = number | boolean | string | null;

export interface Sample {
  device: string;
  point: string;
  /** Milliseconds since the epoch (UTC) at acquisition. */
  ts: number;
  value: SampleValue;
  quality: Quality;
  /** Why the quality is not good: a Modbus exception name, "timeout after 500 ms", "CRC error"... */
  reason?: string;
}
