/**
 * Time is injected. Protocol code takes `now()` from a Clock and schedules through it; it never
 * calls setTimeout/Date.now itself. `RealClock` (real-clock.ts) drives a live stack,
 * `VirtualClock` (virtual-clock.ts) drives deterministic tests and benchmarks.
 */
export interface TimerHandle {
  /** Cancel the timer; cancelling twice or after it fired is harmless. */
  cancel(): void;
  /** True until the timer fires or is cancelled. */
  readonly pending: boolean;
}

export interface Clock {
  /** Monotonic milliseconds since this clock's origin (may be fractional). */
  now(): number;
  /** Milliseconds since the Unix epoch that correspond to `now()` — for capture timestamps and logs. */
  epochMs(): number;
  /** Run `callback` once, `delayMs` from now (negative or zero delays run on the next turn). */
  schedule(delayMs: number, callback: () => void): TimerHandle;
}
