/**
 * At most `limit` events per second (RFC 5961 §7 challenge ACKs per connection, RFC 9293
 * §3.10.7.1 resets for strays per Tcp): the count restarts one second after the window opened.
 */
export class RateLimit {
  private count = 0;
  private windowStart = -Infinity;

  constructor(private readonly limit: number) {}

  /** One more event at `now` (ms): true if it may happen, and it is counted; false if over the limit. */
  allow(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.count = 0;
    }
    if (this.count >= this.limit) return false;
    this.count++;
    return true;
  }
}
