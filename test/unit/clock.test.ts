import { describe, expect, it } from 'vitest';
import { RunawayTimersError, VirtualClock } from '../../src/time/virtual-clock.js';
import { RealClock } from '../../src/time/real-clock.js';
import { SeededRandom } from '../../src/time/random.js';

describe('VirtualClock', () => {
  it('fires timers in time order, ties in scheduling order, and only when advanced', () => {
    const clock = new VirtualClock();
    const fired: string[] = [];
    clock.schedule(20, () => fired.push('b@' + clock.now()));
    clock.schedule(10, () => fired.push('a@' + clock.now()));
    clock.schedule(20, () => fired.push('c@' + clock.now()));
    expect(fired).toEqual([]);
    clock.advance(15);
    expect(fired).toEqual(['a@10']);
    clock.advance(5);
    expect(fired).toEqual(['a@10', 'b@20', 'c@20']);
    expect(clock.now()).toBe(20);
  });

  it('does not fire cancelled timers and reports pending state', () => {
    const clock = new VirtualClock();
    let fired = false;
    const t = clock.schedule(5, () => (fired = true));
    expect(t.pending).toBe(true);
    t.cancel();
    expect(t.pending).toBe(false);
    clock.advance(10);
    expect(fired).toBe(false);
    expect(clock.nextDeadline()).toBeUndefined();
  });

  it('drops a cancelled timer at once: a flood of arm-and-cancel leaves only the live timers', () => {
    const clock = new VirtualClock();
    const live = Array.from({ length: 300 }, (_, i) => clock.schedule(1_000 + i, () => undefined));
    // A SYN flood's worth of retransmission timers, each cancelled by the next event.
    for (let i = 0; i < 50_000; i++) clock.schedule(60_000 + (i % 977), () => undefined).cancel();
    expect(clock.pendingCount).toBe(300);
    expect(clock.heldTimers).toBe(300);
    for (const t of live.slice(0, 100)) t.cancel();
    expect(clock.heldTimers).toBe(200);
    expect(clock.nextDeadline()).toBe(1_100);
  });

  it('keeps time order when timers are cancelled from the middle of the heap', () => {
    const clock = new VirtualClock();
    const fired: number[] = [];
    const timers = Array.from({ length: 200 }, (_, i) => clock.schedule((i * 7919) % 1000, () => fired.push((i * 7919) % 1000)));
    for (let i = 0; i < 200; i += 3) timers[i]!.cancel();
    clock.advance(1000);
    const expected = timers.map((_, i) => (i * 7919) % 1000).filter((_, i) => i % 3 !== 0).sort((a, b) => a - b);
    expect(fired).toEqual(expected);
  });

  it('with a callback limit, a timer that keeps re-arming itself at the same instant throws instead of hanging', () => {
    const clock = new VirtualClock();
    clock.callbackLimit = 1000;
    const again = () => void clock.schedule(0, again);
    clock.schedule(0, again);
    expect(() => clock.advance(1)).toThrow(RunawayTimersError);
  });

  it('runs timers scheduled by timers within the same advance', () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const tick = () => {
      times.push(clock.now());
      if (times.length < 5) clock.schedule(100, tick);
    };
    clock.schedule(100, tick);
    clock.advance(1000);
    expect(times).toEqual([100, 200, 300, 400, 500]);
  });

  it('advanceAsync lets promise continuations run between timers', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const sleep = (ms: number) => new Promise<void>((r) => clock.schedule(ms, r));
    void (async () => {
      await sleep(10);
      seen.push(clock.now());
      await sleep(10);
      seen.push(clock.now());
    })();
    await clock.advanceAsync(50);
    expect(seen).toEqual([10, 20]);
  });
});

describe('SeededRandom', () => {
  it('is repeatable for a seed and differs between seeds', () => {
    const a = new SeededRandom(1);
    const b = new SeededRandom(1);
    const c = new SeededRandom(2);
    const sa = [a.u32(), a.u32(), a.u32()];
    expect([b.u32(), b.u32(), b.u32()]).toEqual(sa);
    expect([c.u32(), c.u32(), c.u32()]).not.toEqual(sa);
    for (const v of sa) expect(v).toBeGreaterThanOrEqual(0);
  });
});

describe('RealClock', () => {
  it('never runs a callback before its deadline by its own now() (libuv fires up to ~1 ms early)', async () => {
    const clock = new RealClock();
    const lateness: number[] = [];
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const delay = 1 + (i % 20) + (i % 3) * 0.4;
        const due = clock.now() + delay;
        return new Promise<void>((resolve) =>
          clock.schedule(delay, () => {
            lateness.push(clock.now() - due);
            resolve();
          }),
        );
      }),
    );
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(0);
  });

  it('cancels a pending timer', async () => {
    const clock = new RealClock();
    let fired = false;
    const timer = clock.schedule(5, () => (fired = true));
    expect(timer.pending).toBe(true);
    timer.cancel();
    expect(timer.pending).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toBe(false);
  });
});
