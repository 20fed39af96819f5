import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/faults/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Interop tests start real peers (socat, pymodbus, mosquitto) on random ports; two workers match the 2-core target.
    maxWorkers: 2,
  },
});
