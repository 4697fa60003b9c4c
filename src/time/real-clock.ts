import type { Clock, TimerHandle } from './clock.js';
import { Containment } from '../stats/containment.js';

/** The one place in src/ that reads the machine's time and sets real timers. */
export class RealClock implements Clock {
  private readonly origin = performance.now();
  private readonly epochAtOrigin = Date.now();

  /**
   * What a timer's callback throws stops at the clock (a timer is the event loop's way into the
   * stack: an exception there would end the process): counted and reported once.
   */
  readonly containment: Containment;

  /** `unref`: the clock's timers alone do not keep the process alive (for libraries embedding a stack). */
  constructor(private readonly options: { unref?: boolean; containment?: Containment } = {}) {
    this.containment = options.containment ?? new Containment();
  }

  now(): number {
    return performance.now() - this.origin;
  }

  epochMs(): number {
    return this.epochAtOrigin + this.now();
  }

  /**
   * Node's timers run on libuv's cached, millisecond loop time, so a timeout can fire up to ~1 ms
   * before `now()` (performance.now) has reached its deadline. The Clock contract is "not before
   * the deadline": an early wake-up re-arms for the rest.
   */
  schedule(delayMs: number, callback: () => void): TimerHandle {
    const deadline = this.now() + Math.max(0, delayMs);
    let pending = true;
    let id: ReturnType<typeof setTimeout>;
    const arm = (ms: number) => {
      id = setTimeout(fire, ms);
      if (this.options.unref) id.unref?.();
    };
    const fire = () => {
      const early = deadline - this.now();
      if (early > 0) {
        arm(Math.ceil(early));
        return;
      }
      pending = false;
      try {
        callback();
      } catch (error) {
        this.containment.caught('a timer', error);
      }
    };
    arm(Math.max(0, delayMs));
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
