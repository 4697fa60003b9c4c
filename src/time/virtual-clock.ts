import type { Clock, TimerHandle } from './clock.js';

interface VirtualTimer extends TimerHandle {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
  fired: boolean;
}

/**
 * A clock that only moves when a test (or benchmark) moves it. Timers fire in time order and,
 * for equal times, in the order they were scheduled — so every run is the same run.
 */
export class VirtualClock implements Clock {
  private current: number;
  private sequence = 0;
  // Binary min-heap on (at, seq).
  private heap: VirtualTimer[] = [];

  constructor(start = 0, private readonly epochOriginMs = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  epochMs(): number {
    return this.epochOriginMs + this.current;
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    const timer: VirtualTimer = {
      at: this.current + Math.max(0, delayMs),
      seq: this.sequence++,
      callback,
      cancelled: false,
      fired: false,
      cancel() {
        this.cancelled = true;
      },
      get pending() {
        return !this.cancelled && !this.fired;
      },
    };
    this.push(timer);
    return timer;
  }

  /** Time of the next live timer, or undefined when none is pending. */
  nextDeadline(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  /** Number of live timers. */
  get pendingCount(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }

  /** Move time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    this.advanceTo(this.current + ms);
  }

  advanceTo(target: number): void {
    for (;;) {
      this.dropCancelled();
      const next = this.heap[0];
      if (!next || next.at > target) break;
      this.pop();
      this.current = Math.max(this.current, next.at);
      next.fired = true;
      next.callback();
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
    for (;;) {
      this.dropCancelled();
      const next = this.heap[0];
      if (!next || next.at > target) break;
      this.pop();
      this.current = Math.max(this.current, next.at);
      next.fired = true;
      next.callback();
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

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: VirtualTimer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): VirtualTimer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Let queued promise continuations (several hops deep) run. */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
