import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { BoardTimeClock } from '../../boards/sim/index.js';

/**
 * The emulated chip's clock on a simulated board: the AVR runs up to a slice ahead of the virtual
 * clock, and what the sketch starts on the chip must be stamped at the AVR's time.
 */
describe('BoardTimeClock', () => {
  it('reads the board time while it is ahead of the clock, else the clock', () => {
    const clock = new VirtualClock();
    clock.advance(10);
    const chipClock = new BoardTimeClock(clock);
    expect(chipClock.now()).toBe(10); // no board yet
    let board: number | undefined = 10.3;
    chipClock.board = () => board;
    expect(chipClock.now()).toBe(10.3);
    expect(chipClock.epochMs() - clock.epochMs()).toBeCloseTo(0.3, 3); // epoch milliseconds are large: float steps
    board = 9; // behind (a reset board starting over): the clock
    expect(chipClock.now()).toBe(10);
    board = undefined; // off
    expect(chipClock.now()).toBe(10);
  });

  it('schedules from the board time on the clock, and tells the board where to end its slice', () => {
    const clock = new VirtualClock();
    const chipClock = new BoardTimeClock(clock);
    chipClock.board = () => 0.4;
    const deadlines: number[] = [];
    chipClock.onSchedule = (at) => deadlines.push(at);
    const fired: number[] = [];
    chipClock.schedule(0.085, () => fired.push(clock.now()));
    expect(deadlines).toHaveLength(1);
    expect(deadlines[0]).toBeCloseTo(0.485, 9);
    clock.advance(0.48);
    expect(fired).toEqual([]);
    clock.advance(0.01);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeCloseTo(0.485, 9);
    // Not ahead: plain scheduling, no slice to end.
    chipClock.board = () => undefined;
    chipClock.schedule(1, () => fired.push(clock.now()));
    expect(deadlines).toHaveLength(1);
    clock.advance(1);
    expect(fired[1]).toBeCloseTo(1.49, 9);
  });
});
