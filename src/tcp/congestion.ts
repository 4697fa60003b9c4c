/**
 * Congestion control (RFC 5681), pluggable: a controller owns cwnd and ssthresh and decides how
 * they grow and shrink; the connection owns loss detection and recovery (NewReno RFC 6582 or
 * SACK-based RFC 6675) and tells the controller what happened. Two controllers: `newReno`
 * (RFC 5681/6582) and `cubic` (RFC 9438); `TcpOptions.congestionControl` picks one.
 */
export interface CongestionControl {
  readonly name: string;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes. */
  readonly ssthresh: number;
  /** New data was acknowledged outside loss recovery; `srtt` is the smoothed RTT (ms) when known. */
  onAck(ackedBytes: number, now: number, srtt?: number): void;
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

/** RFC 9438 §5.1: C = 0.4 (segments/s³); §4.6: β_cubic = 0.7. */
const CUBIC_C = 0.4;
const CUBIC_BETA = 0.7;
/** RFC 9438 §4.3: α_cubic = 3·(1 − β)/(1 + β), so the Reno-friendly estimate matches Reno's average. */
const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/**
 * CUBIC (RFC 9438): after a loss the window falls to β = 0.7 of what it was (not ½), then grows
 * along W(t) = C·(t − K)³ + W_max — fast while far below the window at which loss happened, flat
 * around it, probing beyond — and never slower than Reno would (the Reno-friendly region, §4.3).
 * Time-based growth makes it independent of the RTT; on a long, lossy path it keeps the pipe fuller
 * than NewReno's one segment per RTT. Windows are computed in segments, kept in bytes.
 */
class CubicControl implements CongestionControl {
  readonly name = 'cubic';
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** W_max in segments: the window before the last reduction (§4.2). */
  private windowMax = 0;
  /** Start of the current congestion-avoidance epoch (ms), or undefined until the first ACK in it. */
  private epochStart: number | undefined;
  /** K in seconds (§4.2 eq. 2). */
  private k = 0;
  /** W_est in segments: the Reno-friendly estimate (§4.3). */
  private renoEstimate = 0;

  constructor(
    private mss: number,
    private readonly initialWindow: number,
  ) {
    this.cwnd = initialWindow;
  }

  onAck(ackedBytes: number, now: number, srtt = 0): void {
    if (this.cwnd < this.ssthresh) {
      // RFC 9438 §4.10: standard slow start (RFC 5681 §3.1 eq. 2).
      this.cwnd += Math.min(ackedBytes, this.mss);
      return;
    }
    const mss = this.mss;
    const cwnd = this.cwnd / mss;
    if (this.epochStart === undefined) {
      this.epochStart = now;
      this.renoEstimate = cwnd;
      if (cwnd < this.windowMax) {
        this.k = Math.cbrt((this.windowMax - cwnd) / CUBIC_C);
      } else {
        this.k = 0;
        this.windowMax = cwnd;
      }
    }
    const acked = ackedBytes / mss;
    // §4.3: W_est grows by α_cubic segments per window's worth of ACKed segments.
    this.renoEstimate += (CUBIC_ALPHA * acked) / cwnd;
    // §4.2: the target one RTT ahead, clamped to [cwnd, 1.5·cwnd] (§4.4).
    const t = (now - this.epochStart + srtt) / 1000;
    const cubicWindow = CUBIC_C * (t - this.k) ** 3 + this.windowMax;
    if (cubicWindow < this.renoEstimate) {
      // §4.3 Reno-friendly region.
      this.cwnd = Math.max(this.cwnd, Math.floor(this.renoEstimate * mss));
      return;
    }
    const target = Math.min(Math.max(cubicWindow, cwnd), 1.5 * cwnd);
    // §4.4/4.5: cwnd += (target − cwnd)/cwnd per ACKed segment.
    this.cwnd = Math.max(this.cwnd, Math.floor((cwnd + ((target - cwnd) * acked) / cwnd) * mss));
  }

  onLoss(_flightSize: number): void {
    this.reduce();
    this.cwnd = this.ssthresh;
  }

  onRetransmitTimeout(): void {
    // §4.8: ssthresh as for any congestion event; cwnd restarts from one segment.
    this.reduce();
    this.cwnd = this.mss;
  }

  /** §4.6/4.7: W_max (with fast convergence), ssthresh = β·cwnd, a new epoch on the next ACK. */
  private reduce(): void {
    const cwnd = this.cwnd / this.mss;
    this.windowMax = cwnd < this.windowMax ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    this.ssthresh = Math.max(Math.floor(this.cwnd * CUBIC_BETA), 2 * this.mss);
    this.epochStart = undefined;
  }

  setCwnd(bytes: number): void {
    this.cwnd = Math.max(this.mss, Math.floor(bytes));
  }

  onIdleRestart(): void {
    this.cwnd = Math.min(this.cwnd, this.initialWindow);
    this.epochStart = undefined;
  }

  setMss(mss: number): void {
    this.mss = mss;
  }
}

export const cubic: CongestionControlFactory = (mss, initialWindow) => new CubicControl(mss, initialWindow);

/** RFC 5681 §3.1 eq. 1 (RFC 3390): IW = min(4·SMSS, max(2·SMSS, 4380)). */
export function initialWindow(mss: number, segments: number): number {
  if (segments > 0) return segments * mss;
  return Math.min(4 * mss, Math.max(2 * mss, 4380));
}
