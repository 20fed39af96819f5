import { defineConfig } from 'vitest/config';

// Test files that run with a fresh module graph of their own, as every file did before: those that mock modules
// (vi.mock) or check which modules are loaded (source-registry, supervisor-drivers), and the supervisor, status
// and last-values tests as they were. Every other file shares its worker's modules with the files that ran there
// before (isolate: false), which saves importing the sources again for each file (about a minute of CPU per
// run); a new file that mocks or counts modules, or changes process-wide state it does not restore, goes here.
const ISOLATED = ['test/source-registry.test.ts', 'test/uplink-varint-cache.test.ts', 'test/supervisor*.test.ts', 'test/status*.test.ts', 'test/last-values.test.ts'];

export default defineConfig({
  test: {
    exclude: ['test/faults/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The CLI the tests spawn, bundled once from the sources at the start of the run (test/helpers/cli-bundle.ts).
    globalSetup: ['test/helpers/cli-bundle.ts'],
    // Interop tests start real peers (socat, pymodbus, mosquitto) on random ports; two workers match the 2-core target.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'isolated', include: ISOLATED } },
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: [...ISOLATED, 'test/faults/**', 'node_modules/**'], isolate: false } },
    ],
  },
});
