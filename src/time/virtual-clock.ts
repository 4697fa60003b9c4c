import type { Clock, TimerHandle } from './clock.js';

/** A timer in the heap; `index` is its place there (-1 once it fired or was cancelled). */
interface VirtualTimer extends TimerHandle {
  at: number;
  seq: number;
  callback: () => void;
  index: number;
}

/** More timer callbacks ran in one advance than `callbackLimit` allows: a timer loop. */
export class RunawayTimersError extends Error {
  constructor(
    readonly limit: number,
    readonly at: number,
  ) {
    super(`VirtualClock: more than ${limit} timer callbacks in one advance (virtual time ${at} ms): a timer loop`);
    this.name = 'RunawayTimersError';
  }
}

/**
 * A clock that only moves when a test (or benchmark) moves it. Timers fire in time order and,
 * for equal times, in the order they were scheduled — so every run is the same run.
 *
 * A cancelled timer leaves the heap at once (each timer knows its heap index), so a flood that
 * arms and cancels timers holds only the live ones.
 */
export class VirtualClock implements Clock {
  private current: number;
  private sequence = 0;
  // Binary min-heap on (at, seq).
  private readonly heap: VirtualTimer[] = [];
  /** Timer callbacks run so far (a fuzzer's or a soak's progress figure). */
  callbacksRun = 0;
  /**
   * When set, an advance that runs more callbacks than this throws RunawayTimersError instead of
   * looping for ever: how a test or fuzzer reports input that makes the stack answer itself.
   */
  callbackLimit: number | undefined;

  constructor(
    start = 0,
    private readonly epochOriginMs = Date.UTC(2026, 0, 1),
  ) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  epochMs(): number {
    return this.epochOriginMs + this.current;
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const clock = this;
    const timer: VirtualTimer = {
      at: this.current + Math.max(0, delayMs),
      seq: this.sequence++,
      callback,
      index: -1,
      cancel() {
        if (this.index >= 0) clock.remove(this.index);
      },
      get pending() {
        return this.index >= 0;
      },
    };
    this.push(timer);
    return timer;
  }

  /** Time of the next live timer, or undefined when none is pending. */
  nextDeadline(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Number of live timers. */
  get pendingCount(): number {
    return this.heap.length;
  }

  /** Timer entries the clock holds in memory: the live ones only (a soak's leak figure). */
  get heldTimers(): number {
    return this.heap.length;
  }

  /** Move time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    this.advanceTo(this.current + ms);
  }

  advanceTo(target: number): void {
    let run = 0;
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > target) break;
      this.fire(next, ++run);
    }
    this.current = Math.max(this.current, target);
  }

  /**
   * Like advance(), but lets promise continuations run between timers, for code that awaits
   * (drivers over an asynchronous HAL). Resolves once time reached `current + ms`.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.current + ms;
    await flushMicrotasks();
    let run = 0;
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > target) break;
      this.fire(next, ++run);
      await flushMicrotasks();
    }
    this.current = Math.max(this.current, target);
    await flushMicrotasks();
  }

  /** Fire timers until none is left or `limitMs` of virtual time has passed. */
  runUntilIdle(limitMs = 3_600_000): void {
    const end = this.current + limitMs;
    for (;;) {
      const next = this.nextDeadline();
      if (next === undefined || next > end) return;
      this.advanceTo(next);
    }
  }

  private fire(timer: VirtualTimer, run: number): void {
    if (this.callbackLimit !== undefined && run > this.callbackLimit) throw new RunawayTimersError(this.callbackLimit, this.current);
    this.remove(0);
    this.current = Math.max(this.current, timer.at);
    this.callbacksRun++;
    timer.callback();
  }

  private less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private place(timer: VirtualTimer, i: number): void {
    this.heap[i] = timer;
    timer.index = i;
  }

  private push(timer: VirtualTimer): void {
    this.place(timer, this.heap.length);
    this.siftUp(timer.index);
  }

  /** Take the timer at heap index `i` out (fired or cancelled). */
  private remove(i: number): void {
    const h = this.heap;
    const removed = h[i]!;
    removed.index = -1;
    const last = h.pop()!;
    if (i === h.length) return;
    this.place(last, i);
    if (!this.siftUp(i)) this.siftDown(i);
  }

  /** Returns whether the timer at `i` moved. */
  private siftUp(i: number): boolean {
    const h = this.heap;
    const timer = h[i]!;
    let moved = false;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(timer, h[parent]!)) break;
      this.place(h[parent]!, i);
      i = parent;
      moved = true;
    }
    this.place(timer, i);
    return moved;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const timer = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let best = timer;
      if (l < h.length && this.less(h[l]!, best)) {
        m = l;
        best = h[l]!;
      }
      if (r < h.length && this.less(h[r]!, best)) {
        m = r;
        best = h[r]!;
      }
      if (m === i) break;
      this.place(best, i);
      i = m;
    }
    this.place(timer, i);
  }
}

/** Let queued promise continuations (several hops deep) run. */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
