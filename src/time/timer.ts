import type { Clock, TimerHandle } from './clock.js';

/**
 * One re-armable timer on the injected clock, for every timer the stack keeps re-arming (TCP's
 * retransmission, persist, delayed-ACK, keepalive and close timers; a socket's idle timeout; the ENC28J60 driver's safety-net poll and wake-ups).
 * Pushing the deadline later (the retransmission timer restarted on every ACK) does not
 * reschedule: the pending callback notices the moved deadline and sleeps the rest. `cancel` only
 * disarms: the delayed-ACK timer, armed by one segment and cancelled by the ACK the next one
 * triggers, reuses the pending callback the next time instead of scheduling anew — so a busy
 * connection does not churn the clock. `stop` really cancels (a connection that is gone leaves
 * nothing behind on the clock).
 */
export class RearmableTimer {
  private handle: TimerHandle | undefined;
  private scheduledAt = 0;
  /** Absolute time the timer fires, meaningful while `armed`. */
  deadline = 0;
  armed = false;

  constructor(
    private readonly clock: Clock,
    private readonly onFire: () => void,
  ) {}

  arm(delayMs: number): void {
    const deadline = this.clock.now() + Math.max(0, delayMs);
    this.deadline = deadline;
    this.armed = true;
    if (this.handle?.pending && this.scheduledAt <= deadline) return;
    this.handle?.cancel();
    this.schedule(deadline);
  }

  /** Disarm; a pending callback stays scheduled, finds the timer disarmed and does nothing. */
  cancel(): void {
    this.armed = false;
  }

  /** Disarm and take the callback off the clock. */
  stop(): void {
    this.armed = false;
    this.handle?.cancel();
    this.handle = undefined;
  }

  /** Milliseconds until it fires, or undefined when not armed. */
  remaining(): number | undefined {
    return this.armed ? Math.max(0, this.deadline - this.clock.now()) : undefined;
  }

  private schedule(at: number): void {
    this.scheduledAt = at;
    this.handle = this.clock.schedule(at - this.clock.now(), () => {
      this.handle = undefined;
      if (!this.armed) return;
      if (this.deadline > this.clock.now()) {
        this.schedule(this.deadline);
        return;
      }
      this.armed = false;
      this.onFire();
    });
  }
}
