import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab tests create network namespaces with fixed names; run files one at a time per worker pool
    // but let unit suites spread over the cores.
    pool: 'forks',
  },
});
