import { seqDiff, seqGt } from './seq.js';

/** The bounds of the retransmission timeout, in milliseconds (TcpOptions). */
export interface RtoLimits {
  /** RFC 6298 §2.1: the RTO before any RTT sample. */
  readonly initialRto: number;
  /** RFC 6298 §2.4: the floor of a computed RTO. */
  readonly minRto: number;
  /** RFC 6298 §2.5: the ceiling, "at least 60 seconds". */
  readonly maxRto: number;
}

/** RFC 6298 §5.7: the RTO when data starts after the SYN or SYN-ACK had to be retransmitted. */
const RTO_AFTER_SYN_LOSS = 3000;

/**
 * The round-trip estimator and retransmission timeout of RFC 6298: SRTT and RTTVAR from samples
 * (§2), the RTO clamped to [minRto, maxRto] (§2.4, §2.5), doubled on each timeout (§5.5), and the
 * one segment being timed when timestamps are off, forgotten when anything is retransmitted
 * (Karn's algorithm, §3). With timestamps (RFC 7323 §4.1) every ACK's echo is a sample instead.
 */
export class RttEstimator {
  /** Smoothed round-trip time; undefined until the first sample (RFC 6298 §2.1). */
  srtt: number | undefined;
  /** Round-trip time variation. */
  rttvar = 0;
  /** Retransmission timeout. */
  rto: number;
  /** Sequence number of the segment being timed (RFC 6298 §3), and when it left. */
  private timedSeq: number | undefined;
  private timedAt = 0;

  constructor(private readonly limits: RtoLimits) {
    this.rto = limits.initialRto;
  }

  /**
   * Take one measurement (ms). RFC 6298 §2.2 for the first, §2.3 after it (alpha = 1/8,
   * beta = 1/4), then RTO = SRTT + max(G, K·RTTVAR) with clock granularity G = 1 ms and K = 4,
   * clamped to [minRto, maxRto]. False, and nothing changes, for a negative or non-number sample.
   */
  sample(rtt: number): boolean {
    if (!(rtt >= 0)) return false;
    if (this.srtt === undefined) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    this.rto = Math.min(this.limits.maxRto, Math.max(this.limits.minRto, this.srtt + Math.max(1, 4 * this.rttvar)));
    return true;
  }

  /** RFC 6298 §5.5: the timer expired; double the RTO, up to the ceiling. */
  backoff(): void {
    this.rto = Math.min(this.rto * 2, this.limits.maxRto);
  }

  /** RFC 6298 §5.7: the SYN was retransmitted, so the RTO is at least 3 s when data starts. */
  afterSynRetransmitted(): void {
    this.rto = Math.max(this.rto, RTO_AFTER_SYN_LOSS);
  }

  /** A segment is being timed. */
  get timing(): boolean {
    return this.timedSeq !== undefined;
  }

  /** Time the segment starting at `seq`, sent at `now` (RFC 6298 §3: one at a time). */
  time(seq: number, now: number): void {
    this.timedSeq = seq;
    this.timedAt = now;
  }

  /** Karn's algorithm (RFC 6298 §3): a retransmission makes the timed segment's ACK ambiguous. */
  forgetTimed(): void {
    this.timedSeq = undefined;
  }

  /**
   * An ACK up to `ack` arrived at `now`: if it covers the timed segment, timing stops and the
   * round trip it measured is returned (for `sample`, and for a congestion controller that
   * wants it too).
   */
  timedRoundTrip(ack: number, now: number): number | undefined {
    if (this.timedSeq === undefined || !seqGt(ack, this.timedSeq)) return undefined;
    this.timedSeq = undefined;
    return now - this.timedAt;
  }
}

/**
 * RFC 7323 §5.4: our timestamp clock ticks once a millisecond from a per-connection offset, so
 * TSval reveals no uptime and a new incarnation's values stay ahead of the old one's.
 */
export function timestampClock(now: number, offset: number): number {
  return (Math.floor(now) + offset) >>> 0;
}

/** RFC 7323 §4.1: the RTT an echoed timestamp measures; TSval arithmetic is modulo 2^32. */
export function timestampRtt(nowTsval: number, echo: number): number {
  return seqDiff(nowTsval, echo);
}
