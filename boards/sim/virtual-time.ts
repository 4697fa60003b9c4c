/**
 * Run a VirtualClock "as fast as possible": whenever the event loop has drained (promises, stream
 * callbacks, I/O), jump to the next timer. For simulations without a CPU to pace them (the
 * TypeScript board model); the avr8js board advances its clock itself.
 */
import type { VirtualClock } from '../../src/time/virtual-clock.js';

export interface VirtualTimeDriver {
  stop(): void;
}

/** Drive `clock` until stopped; with no timer pending, time moves by `idleStepMs`. */
export function driveVirtualClock(clock: VirtualClock, idleStepMs = 1): VirtualTimeDriver {
  let running = true;
  const step = () => {
    if (!running) return;
    const next = clock.nextDeadline();
    clock.advanceTo(next ?? clock.now() + idleStepMs);
    setImmediate(step);
  };
  setImmediate(step);
  return { stop: () => (running = false) };
}
