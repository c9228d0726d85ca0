import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails a file in which any log line (in-process, or from a spawned service) exceeds 4 KB.
    setupFiles: ['test/setup/line-guard.ts'],
    // e2e tests start real Envoy and service processes; give them room but keep a bound.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
