import type { Clock, TimerHandle } from './clock.js';

/** The one place in src/ that reads the machine's time and sets real timers. */
export class RealClock implements Clock {
  private readonly origin = performance.now();
  private readonly epochAtOrigin = Date.now();

  /** `unref`: the clock's timers alone do not keep the process alive (for libraries embedding a stack). */
  constructor(private readonly options: { unref?: boolean } = {}) {}

  now(): number {
    return performance.now() - this.origin;
  }

  epochMs(): number {
    return this.epochAtOrigin + this.now();
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    let pending = true;
    const id = setTimeout(() => {
      pending = false;
      callback();
    }, Math.max(0, delayMs));
    if (this.options.unref) id.unref?.();
    return {
      cancel() {
        if (pending) clearTimeout(id);
        pending = false;
      },
      get pending() {
        return pending;
      },
    };
  }
}
