/**
 * Congestion control (RFC 5681), pluggable: a controller owns cwnd and ssthresh and decides how
 * they grow and shrink; the connection owns loss detection and recovery (NewReno RFC 6582 or
 * SACK-based RFC 6675) and tells the controller what happened. Three controllers: `newReno`
 * (RFC 5681/6582), `cubic` (RFC 9438) and `bbr` (model-based, after BBR v1);
 * `TcpOptions.congestionControl` picks one.
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
  /**
   * Optional, for model-based controllers: after every ACK that acknowledged or SACKed new data,
   * in loss recovery too, the connection's running total of delivered bytes (cumulatively ACKed
   * plus currently SACKed above SND.UNA).
   */
  onDelivered?(deliveredBytes: number, now: number): void;
  /** Optional: every RTT sample (ms) the connection takes (RFC 6298 / RFC 7323). */
  onRttSample?(rttMs: number, now: number): void;
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

/** BBR's gains (draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.3, §4.3): 2/ln 2 in STARTUP. */
const BBR_HIGH_GAIN = 2.885;
const BBR_CWND_GAIN = 2;
/** ProbeBW's eight-phase gain cycle: probe up, drain what that queued, cruise. */
const BBR_CYCLE = [1.25, 0.75, 1, 1, 1, 1, 1, 1] as const;
/** BtlBw is the max delivery rate over this many round trips; RTprop the min RTT over 10 s. */
const BBR_BW_WINDOW_ROUNDS = 10;
const BBR_RTPROP_WINDOW_MS = 10_000;
const BBR_PROBE_RTT_MS = 200;
const BBR_MIN_CWND_SEGMENTS = 4;

type BbrMode = 'startup' | 'drain' | 'probe-bw' | 'probe-rtt';

/**
 * A BBR-style model-based controller (after BBR v1, draft-cardwell-iccrg-bbr-congestion-control):
 * instead of reading loss as congestion, it measures the path — the bottleneck bandwidth (the
 * highest delivery rate seen over the last ten round trips) and the round-trip propagation time
 * (the lowest RTT over ten seconds) — and keeps cwnd at twice their product, so random loss on a
 * lossy link does not shrink the window. STARTUP doubles each round until the bandwidth stops
 * growing by a quarter for three rounds, DRAIN holds one BDP for a round, PROBE_BW cycles the
 * window's gain through 1.25/0.75/1×6, PROBE_RTT drops to four segments for 200 ms when the
 * minimum RTT is ten seconds old so queues drain and RTprop is measured afresh.
 *
 * What differs from BBR proper: spinet does not pace, so the gains act on cwnd alone; a round is
 * an RTprop of time rather than a marked packet's round trip; delivery rate is taken over at
 * least one RTprop of ACKs (which smooths ACK compression, where BBR uses per-packet samples).
 * Loss leaves cwnd alone (ssthresh follows cwnd); an RTO drops it to one segment, and ACKs bring
 * it back up to the model at once.
 */
class BbrControl implements CongestionControl {
  readonly name = 'bbr';
  cwnd: number;
  ssthresh = 0x7fffffff;
  mode: BbrMode = 'startup';
  /** Bottleneck bandwidth estimate, bytes per ms. */
  btlBw = 0;
  /** Round-trip propagation time estimate, ms. */
  rtProp = Infinity;
  private rtPropStamp = 0;
  /** (time, delivered) points, oldest first: rates are measured across at least one RTprop. */
  private readonly deliveries: { t: number; delivered: number }[] = [];
  private lastDelivered = 0;
  /** Rate samples for the max filter, oldest first. */
  private readonly rates: { t: number; rate: number }[] = [];
  private roundStart = -Infinity;
  private fullBw = 0;
  private fullBwRounds = 0;
  private filledPipe = false;
  private cycleIndex = 0;
  private probeRttUntil = 0;
  private priorCwnd = 0;

  constructor(
    private mss: number,
    initialWindow: number,
  ) {
    this.cwnd = initialWindow;
  }

  /** The window the model asks for: gain × BtlBw × RTprop, at least four segments. */
  private target(gain: number): number {
    const floor = BBR_MIN_CWND_SEGMENTS * this.mss;
    if (this.btlBw === 0 || !Number.isFinite(this.rtProp)) return Math.max(floor, this.cwnd);
    return Math.max(floor, Math.floor(gain * this.btlBw * this.rtProp));
  }

  private gain(): number {
    switch (this.mode) {
      case 'startup':
        return BBR_HIGH_GAIN;
      case 'drain':
        return 1;
      case 'probe-bw':
        return BBR_CWND_GAIN * BBR_CYCLE[this.cycleIndex]!;
      case 'probe-rtt':
        return 1;
    }
  }

  onRttSample(rtt: number, now: number): void {
    if (rtt <= 0) rtt = 1;
    if (rtt <= this.rtProp || now - this.rtPropStamp > BBR_RTPROP_WINDOW_MS) {
      // A stale minimum is replaced only after PROBE_RTT has had its chance to see the path empty.
      if (rtt <= this.rtProp || this.mode === 'probe-rtt') {
        this.rtProp = rtt;
        this.rtPropStamp = now;
      }
    }
  }

  onDelivered(deliveredNow: number, now: number): void {
    // Never backwards: an RTO forgets the SACK scoreboard, and bytes SACKed before it are
    // counted again when they are cumulatively acknowledged.
    const delivered = Math.max(deliveredNow, this.lastDelivered);
    this.lastDelivered = delivered;
    const points = this.deliveries;
    // A clock that stands still (everything in one instant) gives no interval: keep it bounded.
    if (points.length >= 4096) points.splice(0, points.length - 1);
    if (!Number.isFinite(this.rtProp)) {
      // No RTT yet, so no interval to measure over: keep only the latest point.
      points.length = 0;
      points.push({ t: now, delivered });
      return;
    }
    points.push({ t: now, delivered });
    const interval = Math.max(this.rtProp, 1);
    // The newest point at least one RTprop old is the base of the rate; older ones go.
    let base = -1;
    for (let i = points.length - 1; i >= 0; i--) {
      if (now - points[i]!.t >= interval) {
        base = i;
        break;
      }
    }
    if (base < 0) return;
    if (base > 0) points.splice(0, base);
    const from = points[0]!;
    const rate = (delivered - from.delivered) / (now - from.t);
    this.rates.push({ t: now, rate });
    const horizon = now - BBR_BW_WINDOW_ROUNDS * interval;
    while (this.rates.length > 0 && this.rates[0]!.t < horizon) this.rates.shift();
    let best = 0;
    for (const r of this.rates) if (r.rate > best) best = r.rate;
    this.btlBw = best;
    if (now - this.roundStart >= interval) {
      this.roundStart = now;
      this.newRound(now);
    }
  }

  private newRound(now: number): void {
    if (this.mode === 'startup' || this.mode === 'drain') {
      // §4.3.2.2: the pipe is full when three rounds in a row grew BtlBw by less than a quarter.
      if (this.btlBw >= this.fullBw * 1.25) {
        this.fullBw = this.btlBw;
        this.fullBwRounds = 0;
      } else if (++this.fullBwRounds >= 3) {
        this.filledPipe = true;
      }
      if (this.mode === 'startup' && this.filledPipe) this.mode = 'drain';
      else if (this.mode === 'drain') this.enterProbeBw();
    } else if (this.mode === 'probe-bw') {
      this.cycleIndex = (this.cycleIndex + 1) % BBR_CYCLE.length;
    } else if (this.mode === 'probe-rtt' && now >= this.probeRttUntil) {
      this.rtPropStamp = now;
      this.cwnd = Math.max(this.cwnd, this.priorCwnd);
      if (this.filledPipe) this.enterProbeBw();
      else this.mode = 'startup';
    }
    if (this.mode !== 'probe-rtt' && now - this.rtPropStamp > BBR_RTPROP_WINDOW_MS) {
      this.mode = 'probe-rtt';
      this.priorCwnd = this.cwnd;
      this.cwnd = BBR_MIN_CWND_SEGMENTS * this.mss;
      this.probeRttUntil = now + BBR_PROBE_RTT_MS;
    }
    // The connection sets cwnd = ssthresh when a recovery ends: that must be the model's window.
    this.ssthresh = this.cwnd;
  }

  private enterProbeBw(): void {
    this.mode = 'probe-bw';
    // Start anywhere but the drain phase, as BBR randomises the phase.
    this.cycleIndex = 2;
  }

  onAck(ackedBytes: number): void {
    if (this.mode === 'probe-rtt') {
      this.cwnd = Math.min(this.cwnd, BBR_MIN_CWND_SEGMENTS * this.mss);
      return;
    }
    // §4.2.3: grow by what was delivered, up to the model's target. BBR proper lets cwnd run ahead
    // in STARTUP because pacing holds the sending rate; unpaced, the target caps it in every
    // mode, or the bursts of a doubling window overflow the bottleneck's queue.
    const target = this.target(this.gain());
    this.cwnd = Math.max(Math.min(this.cwnd + ackedBytes, target), BBR_MIN_CWND_SEGMENTS * this.mss);
  }

  onLoss(): void {
    // The model, not loss, sets the window: a random loss is not a congestion signal here.
    this.ssthresh = this.cwnd;
  }

  onRetransmitTimeout(): void {
    this.priorCwnd = Math.max(this.priorCwnd, this.cwnd);
    this.ssthresh = this.cwnd;
    this.cwnd = this.mss;
  }

  setCwnd(bytes: number): void {
    // Recovery logic may set the window; never beyond what the model asks for.
    this.cwnd = Math.max(this.mss, Math.min(Math.floor(bytes), this.target(this.gain())));
  }

  onIdleRestart(): void {
    // Kept: the model still describes the path after a pause.
  }

  setMss(mss: number): void {
    this.mss = mss;
  }
}

export const bbr: CongestionControlFactory = (mss, initialWindow) => new BbrControl(mss, initialWindow);

/** RFC 5681 §3.1 eq. 1 (RFC 3390): IW = min(4·SMSS, max(2·SMSS, 4380)). */
export function initialWindow(mss: number, segments: number): number {
  if (segments > 0) return segments * mss;
  return Math.min(4 * mss, Math.max(2 * mss, 4380));
}
