import { describe, expect, it } from 'vitest';
import { parserTargets } from '../../fuzz/parsers.js';
import { runParser, runStackRound } from '../../fuzz/engine.js';
import { runWatched } from '../../fuzz/watchdog.js';

/**
 * The fuzz targets of `npm run fuzz`, a short seeded run of each (a few seconds in all): the same
 * inputs every time, so a failure here is reproducible from its seed and index. The long runs and
 * their figures are in RELIABILITY.md.
 */
describe('fuzzing, a short seeded run', () => {
  it.each(parserTargets.map((t) => t.name))('the %s parser: no throw, lengths within the bytes, re-emits to the same meaning', (name) => {
    const run = runParser(name, 1_500, 1);
    expect(run.failure).toBeUndefined();
    expect(run.inputs).toBe(1_500);
  });

  it('the whole receive path under 4000 hostile frames, transfers running: nothing thrown or contained, counters consistent, state bounded; afterwards the transfers are byte-exact and ping answers', async () => {
    const round = await runStackRound(4_000, 1, { checkEvery: 250, transferBytes: 64 * 1024 });
    expect(round.failure).toBeUndefined();
    expect(round.report!.inputs).toBe(4_000);
    expect(round.report!.transfersCompleted).toBeGreaterThan(2);
    // Every family of attack was tried.
    for (const count of Object.values(round.report!.byFamily)) expect(count).toBeGreaterThan(100);
  });

  it('the watchdog names the input a hung target is stuck on and ends it', async () => {
    const { failure } = await runWatched({ kind: 'watchdog-check', target: 'watchdog-check', count: 10, seed: 0 }, { hangMs: 1_000 });
    expect(failure).toMatchObject({ index: 2, input: 'dead02' });
    expect(failure!.message).toMatch(/^hung/);
  });
});
