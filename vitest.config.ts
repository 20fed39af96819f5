import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/faults/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The CLI the tests spawn, bundled once from the sources at the start of the run (test/helpers/cli-bundle.ts).
    globalSetup: ['test/helpers/cli-bundle.ts'],
    // Interop tests start real peers (socat, pymodbus, mosquitto) on random ports; two workers match the 2-core target.
    maxWorkers: 2,
  },
});
