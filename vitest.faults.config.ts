import { defineConfig } from 'vitest/config';

// The fault-injection suite (docs/faults.md): real processes killed and restarted, so one file at a time and
// long timeouts; FIELDGATE_SOAK=1 stretches it further.
const soak = process.env.FIELDGATE_SOAK === '1';

export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: soak ? 3_600_000 : 300_000,
    hookTimeout: 60_000,
  },
});
