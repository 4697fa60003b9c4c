/**
 * Congestion control (RFC 5681), pluggable: a controller owns cwnd and ssthresh and decides how
 * they grow and shrink; the connection owns loss detection and recovery (NewReno RFC 6582 or
 * SACK-based RFC 6675) and tells the controller what happened. CUBIC (RFC 9438) would be another
 * `CongestionControlFactory` with its own `onAck`/`onLoss`.
 */
export interface CongestionControl {
  readonly name: string;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes. */
  readonly ssthresh: number;
  /** New data was acknowledged outside loss recovery. */
  onAck(ackedBytes: number, now: number): void;
  /** Loss detected by duplicate ACKs or SACK: set ssthresh; cwnd becomes ssthresh. */
  onLoss(flightSize: number, now: number): void;
  /** The retransmission timer expired (RFC 5681 §3.1 eq. 4, cwnd = loss window). */
  onRetransmitTimeout(flightSize: number, now: number): void;
  /** Recovery logic may set cwnd directly (NewReno inflation/deflation, RFC 6582 §3.2). */
  setCwnd(bytes: number): void;
  /** RFC 5681 §4.1: after an idle period longer than an RTO, restart from the initial window. */
  onIdleRestart(now: number): void;
  /** The MSS changed (PMTU); keep windows in whole segments. */
  setMss(mss: number): void;
}

export type CongestionControlFactory = (mss: number, initialWindow: number) => CongestionControl;

/** RFC 5681 §3.1 eq. 4 / RFC 6582: ssthresh = max(FlightSize / 2, 2·SMSS). */
function halfFlight(flightSize: number, mss: number): number {
  return Math.max(Math.floor(flightSize / 2), 2 * mss);
}

class NewRenoControl implements CongestionControl {
  readonly name = 'newreno';
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** Bytes acked since cwnd last grew by one MSS in congestion avoidance (RFC 5681 §3.1, byte counting). */
  private avoidanceBytes = 0;

  constructor(
    private mss: number,
    private readonly initialWindow: number,
  ) {
    this.cwnd = initialWindow;
  }

  onAck(ackedBytes: number): void {
    if (this.cwnd < this.ssthresh) {
      // RFC 5681 §3.1 eq. 2: cwnd += min(N, SMSS) per ACK in slow start.
      this.cwnd += Math.min(ackedBytes, this.mss);
    } else {
      // RFC 5681 §3.1: ~one SMSS per RTT, counted in bytes (RFC 3465) so stretch ACKs are fair.
      this.avoidanceBytes += ackedBytes;
      if (this.avoidanceBytes >= this.cwnd) {
        this.avoidanceBytes -= this.cwnd;
        this.cwnd += this.mss;
      }
    }
  }

  onLoss(flightSize: number): void {
    this.ssthresh = halfFlight(flightSize, this.mss);
    this.cwnd = this.ssthresh;
    this.avoidanceBytes = 0;
  }

  onRetransmitTimeout(flightSize: number): void {
    this.ssthresh = halfFlight(flightSize, this.mss);
    this.cwnd = this.mss;
    this.avoidanceBytes = 0;
  }

  setCwnd(bytes: number): void {
    this.cwnd = Math.max(this.mss, Math.floor(bytes));
  }

  onIdleRestart(): void {
    this.cwnd = Math.min(this.cwnd, this.initialWindow);
  }

  setMss(mss: number): void {
    this.mss = mss;
  }
}

export const newReno: CongestionControlFactory = (mss, initialWindow) => new NewRenoControl(mss, initialWindow);

/** RFC 5681 §3.1 eq. 1 (RFC 3390): IW = min(4·SMSS, max(2·SMSS, 4380)). */
export function initialWindow(mss: number, segments: number): number {
  if (segments > 0) return segments * mss;
  return Math.min(4 * mss, Math.max(2 * mss, 4380));
}
