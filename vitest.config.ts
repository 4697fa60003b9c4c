import { defineConfig, configDefaults } from 'vitest/config';

/**
 * Suites where the simulated AVR must keep real time against the Linux kernel: their transfers
 * take minutes and crawl when other suites share the two cores. `npm test` runs them last, one
 * at a time, on an otherwise idle machine (SPINET_TESTS=deferred leaves them out of the first pass,
 * SPINET_TESTS=realtime runs only them); run alone, `npx vitest run FILE` includes them as usual.
 */
export const REALTIME_SUITES = ['test/lab/sim-board.test.ts', 'test/lab/w5500-sim.test.ts'];

const pass = process.env.SPINET_TESTS;

export default defineConfig({
  test: {
    include: pass === 'realtime' ? REALTIME_SUITES : ['test/**/*.test.ts'],
    exclude: pass === 'deferred' ? [...configDefaults.exclude, ...REALTIME_SUITES] : configDefaults.exclude,
    fileParallelism: pass !== 'realtime',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab tests create network namespaces with fixed names; run files one at a time per worker pool
    // but let unit suites spread over the cores.
    pool: 'forks',
  },
});
