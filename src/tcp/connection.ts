import type { Ipv4Address } from '../wire/address.js';
import type { Clock } from '../time/clock.js';
import type { IpSendResult } from '../ip/types.js';
import { TcpFlag, TcpRepr, TCP_MAX_WINDOW_SCALE, maxSackBlocks, type SackBlock, type TcpTimestamp } from '../wire/tcp.js';
import { allocateFrame } from '../link/frame-allocator.js';
import { ByteQueue } from './byte-queue.js';
import { SendBuffer } from './send-buffer.js';
import { initialWindow, type CongestionControl } from './congestion.js';
import type { TcpOptions } from './options.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax } from './seq.js';
import { RearmableTimer } from '../time/timer.js';
import { RttEstimator, timestampClock, timestampRtt } from './rtt.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { Assembler } from './assembler.js';
import { resetReplyTo, resetSegment } from './reset.js';
import { RateLimit } from './rate-limit.js';
import { IPV4_TCP_HEADERS, TIMESTAMP_OPTION_LENGTH, sendMssFor } from './mss.js';
import type { TcpStats } from './stats.js';
import { countDrop } from '../stats/counters.js';

/** RFC 9293 §3.3.2. */
export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

/** The timer running on a connection, as netstat names it (Linux's "timer" column). */
export type TcpTimerName = 'retransmit' | 'persist' | 'keepalive' | 'time-wait' | 'fin-wait-2' | 'delayed-ack' | 'off';

/** How a connection can end badly; Node's codes, passed straight to the socket API. */
export type TcpErrorCode = 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' | 'EHOSTUNREACH' | 'ENETUNREACH' | 'ECONNABORTED' | 'EPIPE';

/** Upcalls to the socket layer. Dispatched after a segment or timer has been fully processed. */
export interface TcpConnectionEvents {
  /** The three-way handshake completed (active or simultaneous open). */
  onConnect?(): void;
  /** In-order data (or the end of the stream) is ready for `read()`. */
  onReadable?(): void;
  /** Send-buffer space was freed. */
  onWritable?(): void;
  /** The connection failed; no more events follow. */
  onError?(code: TcpErrorCode): void;
  /** The connection reached CLOSED or TIME-WAIT without error. */
  onClosed?(): void;
}

/** A TCP connection's internals (Linux's tcp_info, what `ss -ti` prints), copied. Sequence numbers are absolute. */
export interface TcpConnectionInfo {
  readonly state: TcpState;
  readonly iss: number;
  readonly irs: number;
  readonly sndUna: number;
  readonly sndNxt: number;
  readonly sndMax: number;
  /** The peer's receive window, scaled, in bytes. */
  readonly sndWnd: number;
  readonly rcvNxt: number;
  /** The window we last advertised, in bytes from RCV.NXT. */
  readonly rcvWnd: number;
  /** Free space in our receive buffer (what the next advertisement may offer). */
  readonly receiveSpace: number;
  readonly sendMss: number;
  readonly peerMss: number;
  readonly localMss: number;
  readonly sndScale: number;
  readonly rcvScale: number;
  readonly sack: boolean;
  readonly timestamps: boolean;
  readonly congestionControl: string;
  readonly cwnd: number;
  readonly ssthresh: number;
  /** Milliseconds; undefined before the first sample. */
  readonly srtt: number | undefined;
  readonly rttvar: number;
  readonly rto: number;
  /** Retransmissions of the oldest unacknowledged segment (the RTO backoff count). */
  readonly backoff: number;
  /** Bytes in flight: SND.MAX − SND.UNA, or RFC 6675's pipe during SACK recovery. */
  readonly bytesInFlight: number;
  readonly inRecovery: boolean;
  readonly retransmittedSegments: number;
  /** Ranges the peer has SACKed above SND.UNA (our scoreboard). */
  readonly peerSackBlocks: readonly SackBlock[];
  /** Out-of-order ranges we hold and report to the peer. */
  readonly ourSackBlocks: readonly SackBlock[];
  readonly sendQueue: number;
  readonly unsent: number;
  readonly receiveQueue: number;
  /** Bytes the peer acknowledged (from SND.UNA − ISS; modulo 2^32). */
  readonly bytesAcked: number;
  /** Bytes received in order (from RCV.NXT − IRS; modulo 2^32; a received FIN counts one). */
  readonly bytesReceived: number;
  /** Every armed timer, with milliseconds until it fires. */
  readonly timers: readonly { readonly name: string; readonly remainingMs: number }[];
}

/** What a connection needs from its Tcp: sending, timekeeping, bookkeeping. */
export interface ConnectionHost {
  readonly clock: Clock;
  readonly options: TcpOptions;
  readonly stats: TcpStats;
  send(connection: TcpConnection, segment: Uint8Array): IpSendResult;
  /** SYN-RECEIVED → ESTABLISHED on a passive open: false if the accept queue is full (drop the ACK). */
  canEstablish(connection: TcpConnection): boolean;
  established(connection: TcpConnection): void;
  /** The connection is gone (CLOSED); remove it from the tables. */
  released(connection: TcpConnection): void;
}

export interface ConnectionId {
  readonly localAddress: Ipv4Address;
  readonly localPort: number;
  readonly remoteAddress: Ipv4Address;
  readonly remotePort: number;
}

/** Per-connection parameters decided at creation (route MSS, buffers). */
export interface ConnectionSetup extends ConnectionId {
  /** Our MSS: min(options.maxSegmentSize, route MTU − 40). */
  readonly localMss: number;
  /** The most the receive window offers: options.receiveBufferSize, or less where the route's NIC holds less (tcp.ts). */
  readonly receiveWindowLimit: number;
  readonly iss: number;
  /** Random offset for our timestamp clock (RFC 7323 §5.4). */
  readonly timestampOffset: number;
}

/** The SYN's negotiated options, as carried by a SYN or recovered from a SYN cookie. */
export interface PeerSynOptions {
  readonly maxSegmentSize?: number;
  readonly windowScale?: number;
  readonly sackPermitted?: boolean;
  readonly timestamp?: TcpTimestamp;
}

const NO_SACK_BLOCKS: readonly SackBlock[] = [];
const NO_PAYLOAD = new Uint8Array(0);

interface RecoveryRetransmission {
  readonly seq: number;
  readonly end: number;
  /** SND.MAX when it was sent: data from here on left after it. */
  readonly sentBefore: number;
}
/** Shared while no recovery is under way, so an idle connection holds no array of its own. */
const NO_RETRANSMISSIONS: readonly RecoveryRetransmission[] = [];

/**
 * One TCP connection: the transmission control block and the RFC 9293 state machine, with
 * RFC 6298 retransmission, RFC 5681/6582 congestion control, RFC 2018/6675 SACK, RFC 7323 window
 * scaling/timestamps/PAWS, RFC 5961 hardening and RFC 1122 delayed ACK, Nagle, keepalive.
 * Its data structures live beside it: the send buffer, the out-of-order `Assembler`, the
 * `SackScoreboard` and the `RttEstimator`; what to do with them is decided here.
 *
 * Synchronous and clock-driven: `receive` (a segment), the API calls and the timers run to
 * completion, send what they must through the host, then dispatch upcalls.
 */
export class TcpConnection implements ConnectionId {
  readonly localAddress: Ipv4Address;
  readonly localPort: number;
  readonly remoteAddress: Ipv4Address;
  readonly remotePort: number;
  readonly key: string;

  state: TcpState = 'CLOSED';
  events: TcpConnectionEvents = {};
  /** Set when the connection belongs to a listener until accept. */
  passive = false;
  /** The application let go (close/destroy): nobody will read; see RFC 1122 §4.2.2.13. */
  orphaned = false;
  error: TcpErrorCode | undefined;

  // --- Send sequence space (RFC 9293 §3.3.1) ---
  readonly iss: number;
  sndUna: number;
  sndNxt: number;
  /** Highest sequence number sent + 1 (sndNxt can fall back to sndUna after an RTO). */
  sndMax: number;
  /** Send window in bytes (scaled). */
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the peer ever offered (RFC 9293 §3.8.6.2.1, RFC 5961 §5.2 MAX.SND.WND). */
  maxSndWnd = 0;
  private readonly sendBuffer = new SendBuffer();
  /** Sequence number of sendBuffer's first byte. */
  private sendStart: number;
  /** The application asked for FIN after the queued data. */
  private finQueued = false;

  // --- Receive sequence space ---
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we last advertised: never moves left (RFC 9293 §3.8.6.2.2). */
  private rcvAdv = 0;
  private readonly receiveQueue = new ByteQueue();
  /** Segments beyond RCV.NXT, held until the gap before them fills (and reported by SACK). */
  private readonly outOfOrder: Assembler;
  /** Sequence number of a FIN seen out of order. */
  private pendingFin: number | undefined;
  /** The peer's FIN has been consumed in sequence. */
  finReceived = false;

  // --- Options (negotiated on the SYN exchange) ---
  /** The most the receive window offers (setup.receiveWindowLimit); the buffer may hold more. */
  readonly receiveWindowLimit: number;
  readonly localMss: number;
  /** MSS the peer can receive (its option, or 536), clamped to our route. */
  peerMss: number;
  /** Payload bytes per full segment: min(peerMss, localMss) − timestamp option. */
  sendMss: number;
  sndScale = 0;
  rcvScale = 0;
  timestampsEnabled = false;
  sackEnabled = false;
  private readonly timestampOffset: number;
  private tsRecent = 0;
  private tsRecentSet = false;
  private lastAckSent = 0;
  /** Options we put on our SYN (active open) or will answer with (passive). */
  private offerWindowScale: boolean;
  private offerTimestamps: boolean;
  private offerSack: boolean;

  // --- RTT and retransmission (RFC 6298) ---
  private readonly rtt: RttEstimator;
  /** Retransmissions of the current oldest segment (exponential backoff count). */
  retransmits = 0;

  // --- Congestion control and loss recovery ---
  cc!: CongestionControl;
  private duplicateAcks = 0;
  inRecovery = false;
  /** RFC 6582 "recover" / RFC 6675 RecoveryPoint. */
  private recover: number;
  /**
   * Retransmissions made in this SACK recovery, each with SND.MAX when it left: data at or above
   * that mark was sent after it, so SACKs for enough of that data while the retransmission is still
   * missing mean it was lost too (RACK's rule, RFC 8985: lost when a later-sent segment is delivered;
   * here "later" by sequence order, so no per-segment transmit times are kept).
   */
  private recoveryRetransmissions: readonly RecoveryRetransmission[] = NO_RETRANSMISSIONS;
  /** What the peer's SACK blocks say it holds above SND.UNA (RFC 6675), and HighRxt. */
  private readonly scoreboard: SackScoreboard;
  /** Bytes cumulatively acknowledged over the connection's life (for model-based congestion control). */
  private ackedTotal = 0;
  private lastSendTime = 0;

  // --- ACK generation ---
  private segmentsSinceAck = 0;
  private ackNow = false;

  // --- Timers ---
  private readonly retransmitTimer: RearmableTimer;
  private readonly persistTimer: RearmableTimer;
  private readonly delayedAckTimer: RearmableTimer;
  private readonly keepAliveTimer: RearmableTimer;
  /** TIME-WAIT 2·MSL, or the orphaned FIN-WAIT-2 limit. */
  private readonly closeTimer: RearmableTimer;
  private persistBackoff = 0;
  /** End of an outstanding zero-window probe byte. */
  private probeEnd: number | undefined;
  private unansweredProbes = 0;

  // --- Per-socket settings ---
  noDelay = false;
  keepAlive = false;
  keepAliveIdle: number;
  private keepAliveProbesSent = 0;
  private lastReceiveTime = 0;
  /** Challenge and duplicate-triggered ACKs, per second (RFC 5961 §7). */
  private readonly challengeAckLimit: RateLimit;
  /** A soft error (ICMP host unreachable) reported if the connection later times out (RFC 1122 §4.2.3.9). */
  private softError: TcpErrorCode | undefined;

  // --- Deferred upcalls ---
  private pendingConnect = false;
  private pendingReadable = false;
  private pendingWritable = false;
  private pendingError: TcpErrorCode | undefined;
  private pendingClosed = false;
  private dispatching = 0;
  /** Segments that arrived while this connection was busy sending (see receive). */
  private deferredSegments: TcpRepr[] = [];

  /** Segments this connection sent again (SYN, data, FIN), over its life. */
  retransmittedSegments = 0;

  constructor(
    private readonly host: ConnectionHost,
    setup: ConnectionSetup,
  ) {
    const o = host.options;
    this.localAddress = setup.localAddress;
    this.localPort = setup.localPort;
    this.remoteAddress = setup.remoteAddress;
    this.remotePort = setup.remotePort;
    this.key = connectionKey(setup.localAddress, setup.localPort, setup.remoteAddress, setup.remotePort);
    this.iss = setup.iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.sendStart = seqAdd(this.iss, 1);
    this.recover = this.iss;
    this.localMss = setup.localMss;
    this.receiveWindowLimit = Math.min(o.receiveBufferSize, setup.receiveWindowLimit);
    this.outOfOrder = new Assembler(o.maxOutOfOrderSegments > 0 ? o.maxOutOfOrderSegments : Math.max(64, Math.ceil(o.receiveBufferSize / setup.localMss)));
    this.peerMss = Math.min(o.defaultPeerMss, setup.localMss);
    this.sendMss = this.peerMss;
    this.timestampOffset = setup.timestampOffset >>> 0;
    this.rtt = new RttEstimator(o);
    this.scoreboard = new SackScoreboard(o.duplicateAckThreshold);
    this.keepAliveIdle = o.keepAliveIdle;
    this.challengeAckLimit = new RateLimit(o.challengeAckLimit);
    this.offerWindowScale = o.windowScaling;
    this.offerTimestamps = o.timestamps;
    this.offerSack = o.sack;
    const clock = host.clock;
    this.retransmitTimer = new RearmableTimer(clock, () => this.run(() => this.onRetransmitTimeout()));
    this.persistTimer = new RearmableTimer(clock, () => this.run(() => this.onPersistTimeout()));
    this.delayedAckTimer = new RearmableTimer(clock, () => this.run(() => this.sendAck()));
    this.keepAliveTimer = new RearmableTimer(clock, () => this.run(() => this.onKeepAliveTimeout()));
    this.closeTimer = new RearmableTimer(clock, () => this.run(() => this.onCloseTimeout()));
    this.lastReceiveTime = clock.now();
    this.cc = o.congestionControl(this.sendMss, initialWindow(this.sendMss, o.initialWindowSegments));
  }

  // ===================================================================================
  // Opening
  // ===================================================================================

  /** Active open (RFC 9293 §3.10.1): send SYN, enter SYN-SENT. */
  open(): void {
    this.run(() => {
      this.state = 'SYN-SENT';
      this.sendSyn();
    });
  }

  /** Passive open from a listener's SYN (RFC 9293 §3.10.7.2): enter SYN-RECEIVED, answer SYN-ACK. */
  acceptSyn(syn: TcpRepr): void {
    this.run(() => {
      this.passive = true;
      this.applyPeerSynOptions(syn, syn.window);
      this.irs = syn.sequence;
      this.rcvNxt = seqAdd(syn.sequence, 1);
      this.state = 'SYN-RECEIVED';
      this.sendSyn();
    });
  }

  /**
   * A connection rebuilt from a valid SYN cookie: the handshake is complete already
   * (RFC 4987 §3.6). `options` are what the cookie could carry.
   */
  acceptCookie(ack: TcpRepr, options: PeerSynOptions): void {
    this.run(() => {
      this.passive = true;
      this.offerWindowScale = this.offerWindowScale && options.windowScale !== undefined;
      this.offerSack = this.offerSack && options.sackPermitted === true;
      this.offerTimestamps = this.offerTimestamps && options.timestamp !== undefined;
      this.irs = seqAdd(ack.sequence, -1);
      this.rcvNxt = ack.sequence;
      this.applyPeerSynOptions(options, 0);
      this.sndUna = this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
      this.rcvAdv = seqAdd(this.rcvNxt, this.receiveBufferFree());
      this.state = 'ESTABLISHED';
      this.sndWnd = ack.window << this.sndScale;
      this.maxSndWnd = this.sndWnd;
      this.sndWl1 = ack.sequence;
      this.sndWl2 = ack.acknowledgment;
      this.restartKeepAlive();
    });
  }

  private applyPeerSynOptions(syn: PeerSynOptions, window: number): void {
    const o = this.host.options;
    let announced = syn.maxSegmentSize ?? o.defaultPeerMss;
    if (announced < o.minPeerMss) {
      announced = o.minPeerMss;
      this.host.stats.peerMssRaised++;
    }
    this.peerMss = Math.max(1, Math.min(announced, this.localMss));
    this.timestampsEnabled = this.offerTimestamps && syn.timestamp !== undefined;
    if (this.timestampsEnabled && syn.timestamp) {
      this.tsRecent = syn.timestamp.value;
      this.tsRecentSet = true;
    }
    this.sackEnabled = this.offerSack && syn.sackPermitted === true;
    this.wsAgreed = this.offerWindowScale && syn.windowScale !== undefined;
    if (this.wsAgreed) {
      this.sndScale = Math.min(syn.windowScale!, TCP_MAX_WINDOW_SCALE);
      this.rcvScale = windowScaleFor(o.receiveBufferSize);
    } else {
      this.sndScale = 0;
      this.rcvScale = 0;
    }
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    this.sndWnd = window;
    this.maxSndWnd = window;
    this.sendMss = sendMssFor(this.peerMss, this.timestampsEnabled);
    this.cc = o.congestionControl(this.sendMss, initialWindow(this.sendMss, o.initialWindowSegments));
  }

  // ===================================================================================
  // Application calls
  // ===================================================================================

  /** Queue bytes for sending; returns how many fit in the send buffer (RFC 9293 §3.10.2 SEND). */
  write(data: Uint8Array): number | TcpErrorCode {
    if (this.error) return this.error;
    if (this.finQueued || !canQueueData(this.state)) return 'EPIPE';
    const room = this.host.options.sendBufferSize - this.sendBuffer.length;
    const n = Math.min(room, data.length);
    if (n <= 0) return 0;
    this.sendBuffer.push(n === data.length ? data : data.subarray(0, n));
    this.run(() => this.output());
    return n;
  }

  /** Free space in the send buffer. */
  get writableSpace(): number {
    return this.host.options.sendBufferSize - this.sendBuffer.length;
  }

  /** Bytes queued for sending and not yet acknowledged. */
  get sendQueueLength(): number {
    return this.sendBuffer.length;
  }

  /** Bytes received in order and not yet read by the application. */
  get readableLength(): number {
    return this.receiveQueue.length;
  }

  /** The peer's FIN has been received and every byte before it read. */
  get endOfStream(): boolean {
    return this.finReceived && this.receiveQueue.length === 0;
  }

  /** Take up to `max` received bytes (RFC 9293 §3.10.3 RECEIVE); may open the window. */
  read(max = Infinity): Uint8Array {
    const data = this.receiveQueue.take(max);
    if (data.length > 0) this.run(() => this.maybeSendWindowUpdate());
    return data;
  }

  /** Half-close (RFC 9293 §3.10.4 CLOSE): FIN after the queued data; receiving continues. */
  shutdown(): void {
    this.run(() => this.queueFin());
  }

  /**
   * The FIN goes after the queued data (RFC 9293 §3.10.4): ESTABLISHED → FIN-WAIT-1,
   * CLOSE-WAIT → LAST-ACK; before the handshake completes it waits for ESTABLISHED.
   */
  private queueFin(): void {
    if (this.finQueued) return;
    switch (this.state) {
      case 'SYN-SENT':
      case 'SYN-RECEIVED':
        this.finQueued = true;
        break;
      case 'ESTABLISHED':
        this.finQueued = true;
        this.state = 'FIN-WAIT-1';
        break;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.state = 'LAST-ACK';
        break;
      default:
        return;
    }
    this.output();
  }

  /**
   * The application is done with the connection (close(2)). RFC 1122 §4.2.2.13: unread data (now
   * or later) means RST; otherwise FIN and the connection finishes on its own.
   */
  close(): void {
    this.run(() => {
      if (this.orphaned) return;
      this.orphaned = true;
      this.events = {};
      if (this.state === 'CLOSED' || this.state === 'TIME-WAIT') return;
      if (this.state === 'SYN-SENT') {
        this.release();
        return;
      }
      if (this.receiveQueue.length > 0) {
        this.abort();
        return;
      }
      this.queueFin();
      if (this.state === 'FIN-WAIT-2') this.closeTimer.arm(this.host.options.finWait2Timeout);
    });
  }

  /** ABORT (RFC 9293 §3.10.5): RST in synchronized states, then CLOSED. */
  abort(): void {
    this.run(() => {
      if (this.state === 'CLOSED') return;
      if (isSynchronized(this.state) || this.state === 'SYN-RECEIVED') this.sendReset();
      this.release();
    });
  }

  /** Drop the connection without a segment or upcall (TIME-WAIT reused by a new SYN). */
  abortQuietly(): void {
    this.events = {};
    this.release();
  }

  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
    if (noDelay) this.run(() => this.output());
  }

  setKeepAlive(enable: boolean, idleMs?: number): void {
    this.keepAlive = enable;
    if (idleMs !== undefined && idleMs > 0) this.keepAliveIdle = idleMs;
    this.restartKeepAlive();
  }

  // ===================================================================================
  // Segment arrival (RFC 9293 §3.10.7)
  // ===================================================================================

  receive(seg: TcpRepr): void {
    if (this.dispatching > 0) {
      // Re-entered: our own segment reached a peer on a synchronous link and its answer is back
      // before we finished sending (SND.NXT/SND.MAX not yet advanced). Take it when we are done;
      // copied, since the frame's buffer belongs to the layers below.
      this.deferredSegments.push({ ...seg, payload: seg.payload.slice() });
      return;
    }
    this.run(() => this.receiveNow(seg));
  }

  private receiveNow(seg: TcpRepr): void {
    if (this.state === 'SYN-SENT') this.receiveInSynSent(seg);
    else if (this.state !== 'CLOSED' && this.state !== 'LISTEN') this.receiveSynchronized(seg);
  }

  /** RFC 9293 §3.10.7.3. */
  private receiveInSynSent(seg: TcpRepr): void {
    const flags = seg.flags;
    const hasAck = (flags & TcpFlag.ACK) !== 0;
    if (hasAck && (seqLe(seg.acknowledgment, this.iss) || seqGt(seg.acknowledgment, this.sndMax))) {
      if (!(flags & TcpFlag.RST)) this.sendReset(seg);
      return;
    }
    if (flags & TcpFlag.RST) {
      // RFC 5961 §3.2 for SYN-SENT: only an RST acknowledging our SYN is believed.
      if (hasAck) this.fail('ECONNREFUSED');
      return;
    }
    if (!(flags & TcpFlag.SYN)) return;
    this.applyPeerSynOptions(seg, seg.window);
    this.irs = seg.sequence;
    this.rcvNxt = seqAdd(seg.sequence, 1);
    // Our SYN's window (never scaled) now starts at RCV.NXT.
    this.rcvAdv = seqAdd(this.rcvNxt, Math.min(0xffff, this.receiveBufferFree()));
    this.lastReceiveTime = this.host.clock.now();
    if (hasAck) {
      this.ackSyn(seg.acknowledgment, seg.timestamp);
      this.sndWl1 = seg.sequence;
      this.sndWl2 = seg.acknowledgment;
      this.state = 'ESTABLISHED';
      this.pendingConnect = true;
      this.restartKeepAlive();
      if (this.finQueued) this.state = 'FIN-WAIT-1';
      this.ackNow = true;
      if (seg.payload.length > 0 || flags & TcpFlag.FIN) {
        this.processText({ ...seg, sequence: this.rcvNxt, flags: flags & ~TcpFlag.SYN });
      }
      this.output();
      this.flushAck();
    } else {
      // Simultaneous open (RFC 9293 §3.10.7.3 fourth, Figure 8): SYN-RECEIVED, SYN-ACK.
      this.state = 'SYN-RECEIVED';
      this.sndNxt = this.iss;
      this.sendSyn();
    }
  }

  /** Our SYN was acknowledged: the SYN leaves the retransmission queue, the first RTT sample is taken. */
  private ackSyn(ack: number, timestamp: TcpTimestamp | undefined): void {
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retransmitTimer.cancel();
    if (this.retransmits === 0) this.sampleAck(ack, timestamp);
    else this.rtt.afterSynRetransmitted();
    this.rtt.forgetTimed();
    this.retransmits = 0;
  }

  /** RFC 9293 §3.10.7.4, states SYN-RECEIVED through TIME-WAIT. */
  private receiveSynchronized(seg: TcpRepr): void {
    const flags = seg.flags;
    const now = this.host.clock.now();

    // SYN-RECEIVED: a retransmitted SYN gets our SYN-ACK again; the peer's SYN-ACK in a
    // simultaneous open completes the handshake (RFC 9293 Figure 8, line 5).
    if (this.state === 'SYN-RECEIVED' && flags & TcpFlag.SYN && !(flags & TcpFlag.RST) && seg.sequence === this.irs) {
      if (flags & TcpFlag.ACK && seqGt(seg.acknowledgment, this.sndUna) && seqLe(seg.acknowledgment, this.sndMax)) {
        if (seg.timestamp && this.timestampsEnabled) this.tsRecent = seg.timestamp.value;
        this.establishFromSynReceived(seg);
        this.ackNow = true;
        this.output();
        this.flushAck();
      } else if (!(flags & TcpFlag.ACK)) {
        this.countRetransmission();
        this.sendSynSegment();
      }
      return;
    }

    // RFC 7323 §3.2: once timestamps are on, a non-RST segment without one SHOULD be dropped.
    if (this.timestampsEnabled && !seg.timestamp && !(flags & TcpFlag.RST)) {
      countDrop(this.host.stats.dropped, 'noTimestamp');
      return;
    }
    // RFC 7323 §5.3 PAWS: an older timestamp than TS.Recent marks an old duplicate.
    if (this.timestampsEnabled && seg.timestamp && this.tsRecentSet && !(flags & TcpFlag.RST) && seqLt(seg.timestamp.value, this.tsRecent)) {
      countDrop(this.host.stats.dropped, 'paws');
      this.sendAckRateLimited();
      return;
    }

    // First: sequence number acceptable? (RFC 9293 §3.10.7.4, the four cases)
    const segLen = seg.payload.length + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0);
    const rcvWnd = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    if (!this.acceptable(seg.sequence, segLen, rcvWnd)) {
      countDrop(this.host.stats.dropped, 'outOfWindow');
      if (!(flags & TcpFlag.RST)) {
        if (this.state === 'TIME-WAIT' && flags & TcpFlag.FIN) this.closeTimer.arm(2 * this.host.options.msl);
        this.sendAck();
      }
      return;
    }

    // Second: RST (RFC 5961 §3.2: exact match resets, in-window gets a challenge ACK).
    if (flags & TcpFlag.RST) {
      if (seg.sequence !== this.rcvNxt) {
        this.host.stats.challengeAcks++;
        this.sendAckRateLimited();
        return;
      }
      this.receiveReset();
      return;
    }

    // Timestamps: RFC 7323 §4.3 TS.Recent update, on segments that cover Last.ACK.sent.
    if (this.timestampsEnabled && seg.timestamp && seqLe(seg.sequence, this.lastAckSent) && seqGe(seg.timestamp.value, this.tsRecent)) {
      this.tsRecent = seg.timestamp.value;
      this.tsRecentSet = true;
    }

    // Fourth: SYN in a synchronized state → challenge ACK (RFC 5961 §4.2, RFC 9293 §3.10.7.4).
    if (flags & TcpFlag.SYN) {
      this.host.stats.challengeAcks++;
      this.sendAckRateLimited();
      return;
    }

    // Fifth: ACK.
    if (!(flags & TcpFlag.ACK)) return;
    this.lastReceiveTime = now;
    this.keepAliveProbesSent = 0;

    if (this.state === 'SYN-RECEIVED') {
      if (seqGt(seg.acknowledgment, this.sndUna) && seqLe(seg.acknowledgment, this.sndMax)) {
        if (!this.establishFromSynReceived(seg)) return;
      } else {
        this.sendReset(seg);
        return;
      }
    }

    if (!this.processAck(seg)) return;
    if (this.state === 'CLOSED') return;

    // Seventh and eighth: data and FIN.
    this.processText(seg);
    this.output();
    this.flushAck();
  }

  /** RFC 9293 §3.10.7.4: the segment-acceptability test. */
  private acceptable(seq: number, segLen: number, rcvWnd: number): boolean {
    if (segLen === 0) {
      if (rcvWnd === 0) return seq === this.rcvNxt;
      return seqLe(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, rcvWnd));
    }
    if (rcvWnd === 0) return false;
    const end = seqAdd(seq, segLen - 1);
    const windowEnd = seqAdd(this.rcvNxt, rcvWnd);
    return (seqLe(this.rcvNxt, seq) && seqLt(seq, windowEnd)) || (seqLe(this.rcvNxt, end) && seqLt(end, windowEnd));
  }

  private establishFromSynReceived(seg: TcpRepr): boolean {
    if (this.passive && !this.host.canEstablish(this)) {
      countDrop(this.host.stats.dropped, 'acceptQueueFull');
      return false;
    }
    this.ackSyn(seg.acknowledgment, seg.timestamp);
    this.state = this.finQueued ? 'FIN-WAIT-1' : 'ESTABLISHED';
    this.sndWnd = seg.window << this.sndScale;
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
    this.sndWl1 = seg.sequence;
    this.sndWl2 = seg.acknowledgment;
    this.restartKeepAlive();
    if (this.passive) this.host.established(this);
    else this.pendingConnect = true;
    return true;
  }

  private receiveReset(): void {
    this.host.stats.resetsReceived++;
    switch (this.state) {
      case 'SYN-RECEIVED':
        // RFC 9293 §3.10.7.4: passive → back to LISTEN (forget it); active → refused.
        if (this.passive) this.release();
        else this.fail('ECONNREFUSED');
        return;
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        this.fail('ECONNRESET');
        return;
      case 'TIME-WAIT':
        // RFC 1337: ignore RST in TIME-WAIT (TIME-WAIT assassination hazards).
        return;
      default:
        this.release();
    }
  }

  /** Fifth step for synchronized states. Returns false when the segment must be dropped. */
  private processAck(seg: TcpRepr): boolean {
    const ack = seg.acknowledgment;
    // RFC 5961 §5.2: acceptable if SND.UNA − MAX.SND.WND ≤ SEG.ACK ≤ SND.NXT (SND.MAX here, which
    // covers data sent before an RTO pulled SND.NXT back).
    if (seqGt(ack, this.sndMax) && !(this.probeEnd !== undefined && seqLe(ack, this.probeEnd))) {
      countDrop(this.host.stats.dropped, 'ackUnsent');
      this.sendAckRateLimited();
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      countDrop(this.host.stats.dropped, 'ackTooOld');
      this.sendAckRateLimited();
      return false;
    }

    const window = seg.window << this.sndScale;
    const newSack = seg.sackBlocks !== undefined && this.sackEnabled && this.scoreboard.update(seg.sackBlocks, this.sndUna, this.sndMax);
    const priorUna = this.sndUna;

    if (seqGt(ack, this.sndUna)) {
      this.newAck(seg, ack);
    } else if (ack === this.sndUna) {
      // RFC 5681 §2 duplicate ACK: no data, no SYN/FIN, same window, data outstanding. RFC 6675 §2:
      // with SACK, an ACK with new SACK information counts even if the window changed (Linux's
      // receiver grows its window while it holds out-of-order data, so "same window" fails there).
      const isDuplicate =
        seg.payload.length === 0 &&
        !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN)) &&
        this.sndMax !== this.sndUna &&
        ((window === this.sndWnd && window > 0) || newSack);
      if (isDuplicate) this.duplicateAck();
    }
    if (this.inRecovery && this.sackEnabled && this.recoveryRetransmissions.length > 0) this.resendLostRetransmissions();
    if (this.cc.onDelivered && (newSack || seqGt(this.sndUna, priorUna))) this.cc.onDelivered(this.ackedTotal + this.scoreboard.sackedBytes(), this.host.clock.now());

    // RFC 9293 §3.10.7.4: window update if the segment is newer than the last one used.
    if (seqLt(this.sndWl1, seg.sequence) || (this.sndWl1 === seg.sequence && seqLe(this.sndWl2, ack))) {
      const opened = window > this.sndWnd;
      this.sndWnd = window;
      this.sndWl1 = seg.sequence;
      this.sndWl2 = ack;
      this.maxSndWnd = Math.max(this.maxSndWnd, window);
      if (window > 0) {
        if (this.persistTimer.armed) this.persistTimer.cancel();
        this.persistBackoff = 0;
      }
      if (opened) this.unansweredProbes = 0;
    } else if (seqGt(this.sndUna, priorUna)) {
      // No window from this segment (older than SND.WL1: a retransmission that fills a hole), yet
      // it moved SND.UNA: keep the right edge where the peer last put it, as BSD does
      // (SND.WND −= acked). SND.UNA + SND.WND would otherwise run past it, and a Linux peer drops
      // whole any segment that ends beyond its window while its receive queue holds data, and
      // the ACK it carries with it.
      this.sndWnd = Math.max(0, this.sndWnd - seqDiff(this.sndUna, priorUna));
    }
    this.unansweredProbes = 0;

    // Our FIN acknowledged?
    const finAcked = this.finAcked();
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (finAcked) {
          this.state = 'FIN-WAIT-2';
          if (this.orphaned) this.closeTimer.arm(this.host.options.finWait2Timeout);
        }
        break;
      case 'CLOSING':
        if (finAcked) {
          this.enterTimeWait();
          return false;
        }
        break;
      case 'LAST-ACK':
        if (finAcked) {
          this.pendingClosed = true;
          this.release();
          return false;
        }
        break;
      case 'TIME-WAIT':
        // A retransmitted FIN: acknowledge it and restart the 2·MSL timeout.
        if (seg.flags & TcpFlag.FIN) {
          this.closeTimer.arm(2 * this.host.options.msl);
          this.sendAck();
        }
        return false;
      default:
        break;
    }
    return true;
  }

  private newAck(seg: TcpRepr, ack: number): void {
    const acked = seqDiff(ack, this.sndUna);
    const flightBefore = seqDiff(this.sndMax, this.sndUna);
    const dataAcked = Math.max(0, Math.min(seqDiff(ack, this.sendStart), this.sendBuffer.length));
    if (dataAcked > 0) {
      this.sendBuffer.drop(dataAcked);
      this.sendStart = seqAdd(this.sendStart, dataAcked);
      this.pendingWritable = true;
    }
    this.sndUna = ack;
    this.ackedTotal += acked;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    if (seqLt(this.sndMax, ack)) this.sndMax = ack;
    this.probeEnd = undefined;
    this.host.stats.bytesAcked += dataAcked;

    this.sampleAck(ack, seg.timestamp);
    // RFC 6298 §5.7-ish: new data acknowledged ends the backoff.
    this.retransmits = 0;
    this.scoreboard.acknowledge(ack);

    if (this.inRecovery) {
      if (seqGe(ack, this.recover)) {
        // RFC 6582 §3.2 step 3 (full ACK) / RFC 6675 §5 exit: deflate to ssthresh.
        this.inRecovery = false;
        this.recoveryRetransmissions = NO_RETRANSMISSIONS;
        const flight = seqDiff(this.sndMax, this.sndUna);
        this.cc.setCwnd(this.sackEnabled ? this.cc.ssthresh : Math.min(this.cc.ssthresh, Math.max(flight, this.sendMss) + this.sendMss));
        this.duplicateAcks = 0;
      } else if (!this.sackEnabled) {
        // RFC 6582 §3.2 step 4 (partial ACK): retransmit the next hole, deflate by what was acked.
        this.retransmitAt(this.sndUna);
        const cwnd = this.cc.cwnd - acked + (acked >= this.sendMss ? this.sendMss : 0);
        this.cc.setCwnd(cwnd);
      }
    } else {
      this.duplicateAcks = 0;
      this.cc.onAck(Math.min(acked, flightBefore), this.host.clock.now(), this.rtt.srtt);
    }

    // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
    if (this.sndUna === this.sndMax) this.retransmitTimer.cancel();
    else this.retransmitTimer.arm(this.rtt.rto);
  }

  /**
   * A go-back (RTO, smaller path MTU) replaces any loss recovery under way; duplicate ACKs of what
   * was in flight before it start none (RFC 6582's `recover`).
   */
  private abandonRecovery(): void {
    this.inRecovery = false;
    this.recoveryRetransmissions = NO_RETRANSMISSIONS;
    this.duplicateAcks = 0;
    this.recover = this.sndMax;
  }

  private duplicateAck(): void {
    this.duplicateAcks++;
    this.host.stats.duplicateAcks++;
    const threshold = this.host.options.duplicateAckThreshold;
    if (this.inRecovery) {
      // RFC 6582 §3.2 step 3: inflate cwnd by one segment per further duplicate.
      if (!this.sackEnabled) this.cc.setCwnd(this.cc.cwnd + this.sendMss);
      return;
    }
    const lossIndicated = this.duplicateAcks >= threshold || (this.sackEnabled && this.scoreboard.isLost(this.sndUna, this.sendMss));
    if (!lossIndicated) return;
    // RFC 6582 §3.2 step 2: no new recovery while the ACK is below the previous recovery point
    // (duplicates caused by our own go-back-N retransmissions after an RTO).
    if (seqLt(this.sndUna, this.recover)) return;
    this.enterRecovery();
  }

  /**
   * RFC 3042 Limited Transmit: on each of the first DupThresh − 1 duplicate ACKs, one new segment
   * beyond cwnd (cwnd itself unchanged), so a small window still produces the duplicates that
   * trigger fast retransmit instead of waiting for the RTO.
   */
  private limitedTransmitAllowance(): number {
    if (this.inRecovery || this.duplicateAcks === 0 || this.duplicateAcks >= this.host.options.duplicateAckThreshold) return 0;
    return Math.min(this.duplicateAcks, 2) * this.sendMss;
  }

  private enterRecovery(): void {
    // RFC 5681 §3.2 step 2: what Limited Transmit sent beyond cwnd (which it leaves unchanged)
    // "MUST NOT be included" in the FlightSize that sets ssthresh.
    const flight = Math.min(seqDiff(this.sndMax, this.sndUna), this.cc.cwnd);
    this.inRecovery = true;
    this.recover = this.sndMax;
    this.cc.onLoss(flight, this.host.clock.now());
    this.host.stats.fastRetransmits++;
    this.rtt.forgetTimed();
    if (this.sackEnabled) {
      // RFC 6675 §5 step 4: cwnd = ssthresh, retransmit the first lost segment, then by pipe.
      this.scoreboard.highRxt = this.sndUna;
      this.retransmitAt(this.sndUna);
      this.scoreboard.highRxt = seqAdd(this.sndUna, this.segmentLengthAt(this.sndUna));
    } else {
      // RFC 6582 §3.2 step 2 / RFC 5681 §3.2: retransmit, cwnd = ssthresh + 3·SMSS.
      this.retransmitAt(this.sndUna);
      this.cc.setCwnd(this.cc.ssthresh + 3 * this.sendMss);
    }
    this.retransmitTimer.arm(this.rtt.rto);
  }

  // --- SACK recovery (RFC 6675 §5) ---

  /**
   * A retransmission is lost when DupThresh segments' worth of data sent after it has been SACKed
   * and it has not (RFC 8985's inference, with RFC 6675's DupThresh for reordering; RFC 6675 alone
   * waits for the RTO, which resets cwnd to one segment). Send it again at once. It belongs to the
   * same loss episode, so the window is not reduced again (one reduction per recovery, RFC 6675 §5).
   */
  private resendLostRetransmissions(): void {
    const kept: RecoveryRetransmission[] = [];
    for (const r of this.recoveryRetransmissions) {
      if (seqGe(this.sndUna, r.end) || this.scoreboard.covers(r.seq, r.end)) continue;
      if (this.scoreboard.isLost(seqAdd(r.sentBefore, -1), this.sendMss)) {
        const seq = seqMax(r.seq, this.sndUna);
        this.host.stats.lostRetransmissions++;
        this.retransmitAt(seq, seqDiff(r.end, seq), false);
        kept.push({ seq, end: r.end, sentBefore: this.sndMax });
      } else kept.push(r);
    }
    this.recoveryRetransmissions = kept;
  }

  // ===================================================================================
  // Receiving data (RFC 9293 §3.10.7.4 seventh and eighth)
  // ===================================================================================

  private processText(seg: TcpRepr): void {
    const canReceive = this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2' || this.state === 'SYN-RECEIVED';
    let seq = seg.sequence;
    let data = seg.payload;
    let fin = (seg.flags & TcpFlag.FIN) !== 0;
    if (!canReceive) {
      // CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent FIN; data or FIN again is a duplicate.
      if (data.length > 0 || fin) this.ackNow = true;
      return;
    }
    if (data.length > 0 && this.orphaned) {
      // RFC 1122 §4.2.2.13 / RFC 9293 §3.10.7.4: data for a closed application → RST.
      this.sendReset();
      this.release();
      return;
    }
    // Trim what lies before RCV.NXT and beyond the window (RFC 9293 §3.10.7.4 first, "trimmed").
    const before = seqDiff(this.rcvNxt, seq);
    if (before > 0) {
      if (before >= data.length) {
        if (before > data.length || !fin) {
          if (data.length > 0 || fin) this.ackNow = true;
          return;
        }
        data = data.subarray(data.length);
      } else data = data.subarray(before);
      seq = this.rcvNxt;
    }
    const windowRight = this.rcvAdv;
    const room = seqDiff(windowRight, seq);
    if (data.length > room) {
      data = data.subarray(0, Math.max(0, room));
      fin = false;
    }

    if (seq === this.rcvNxt) {
      // In-order data that reaches into bytes already held stops where they start: the first copy
      // of a byte wins here as in the assembler, and the held bytes follow from there.
      const finAt = seqAdd(seq, data.length);
      const held = this.outOfOrder.firstHeld;
      if (held !== undefined && seqLt(held, finAt)) data = data.subarray(0, seqDiff(held, seq));
      if (data.length > 0) {
        this.queueReceived(data);
        this.rcvNxt = seqAdd(this.rcvNxt, data.length);
        this.host.stats.bytesReceived += data.length;
        this.pendingReadable = true;
        this.segmentsSinceAck++;
        if (!this.outOfOrder.isEmpty) {
          this.drainOutOfOrder();
          // RFC 5681 §4.2: a segment that fills a gap is acknowledged at once.
          this.ackNow = true;
        }
        if (this.segmentsSinceAck >= this.host.options.ackEverySegments) this.ackNow = true;
      }
      if (fin) this.pendingFin = finAt;
    } else {
      // Out of order: keep it (bounded), and ACK at once so the sender sees the hole (RFC 5681 §4.2).
      if (data.length > 0 && this.outOfOrder.insert(seq, data) === 'full') countDrop(this.host.stats.dropped, 'outOfOrderFull');
      if (fin) this.pendingFin = seqAdd(seq, data.length);
      this.ackNow = true;
    }

    if (this.pendingFin !== undefined && this.pendingFin === this.rcvNxt) this.receiveFin();
    else if (data.length > 0 && !this.ackNow && !this.delayedAckTimer.armed) {
      // RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2: delay the ACK (at most delayedAckTimeout).
      this.delayedAckTimer.arm(this.host.options.delayedAckTimeout);
    }
  }

  /**
   * In-order bytes into the receive queue. A received frame is never reused or changed by the layers
   * below (the Nic contract), so a payload that is most of its buffer is kept as it is; a small one
   * is copied, so a window of tiny segments cannot pin a buffer (a slab, a big frame) each.
   */
  private queueReceived(data: Uint8Array): void {
    if (2 * data.length >= data.buffer.byteLength) this.receiveQueue.pushOwned(data);
    else this.receiveQueue.push(data);
  }

  /** Out-of-order segments the new data reached, in order into the receive queue. */
  private drainOutOfOrder(): void {
    for (let data = this.outOfOrder.takeContiguous(this.rcvNxt); data; data = this.outOfOrder.takeContiguous(this.rcvNxt)) {
      this.receiveQueue.pushOwned(data);
      this.rcvNxt = seqAdd(this.rcvNxt, data.length);
      this.host.stats.bytesReceived += data.length;
    }
  }

  /** Current SACK blocks to report, most recent first (RFC 2018 §4). */
  sackBlocks(): readonly SackBlock[] {
    return this.sackEnabled ? this.outOfOrder.sackBlocks() : NO_SACK_BLOCKS;
  }

  /** Eighth: the FIN, now in sequence. */
  private receiveFin(): void {
    this.pendingFin = undefined;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.finReceived = true;
    this.pendingReadable = true;
    this.ackNow = true;
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.state = 'CLOSE-WAIT';
        break;
      case 'FIN-WAIT-1':
        if (this.finAcked()) this.enterTimeWait();
        else this.state = 'CLOSING';
        break;
      case 'FIN-WAIT-2':
        this.enterTimeWait();
        break;
      default:
        break;
    }
    this.keepAliveTimer.cancel();
  }

  private enterTimeWait(): void {
    this.state = 'TIME-WAIT';
    this.retransmitTimer.cancel();
    this.persistTimer.cancel();
    this.keepAliveTimer.cancel();
    this.closeTimer.arm(2 * this.host.options.msl);
    this.pendingClosed = true;
  }

  // ===================================================================================
  // Sending
  // ===================================================================================

  /** Sequence number just past the queued data. */
  private dataEnd(): number {
    return seqAdd(this.sendStart, this.sendBuffer.length);
  }

  private finSequence(): number {
    return this.dataEnd();
  }

  private finSent(): boolean {
    return this.finQueued && seqGt(this.sndMax, this.finSequence());
  }

  /** The peer acknowledged our FIN: SND.UNA is past it. */
  private finAcked(): boolean {
    return this.finSent() && seqGe(this.sndUna, seqAdd(this.finSequence(), 1));
  }

  /** Bytes of sequence space the segment at `seq` would cover if sent now (data up to one MSS, or the FIN). */
  private segmentLengthAt(seq: number): number {
    const data = Math.max(0, Math.min(this.sendMss, seqDiff(this.dataEnd(), seq)));
    if (data > 0) return data;
    return this.finQueued && seq === this.finSequence() ? 1 : 0;
  }

  /** Send whatever the windows, Nagle and SWS avoidance allow (RFC 9293 §3.8.6.2.1, RFC 896). */
  private output(): void {
    if (!canSendData(this.state)) return;
    const now = this.host.clock.now();
    // RFC 5681 §4.1: restart the window after an idle period longer than the RTO.
    if (this.sndUna === this.sndMax && now - this.lastSendTime > this.rtt.rto && this.lastSendTime > 0 && this.sendBuffer.length > 0) {
      this.cc.onIdleRestart(now);
    }
    for (let guard = 0; guard < 10_000; guard++) {
      if (this.inRecovery && this.sackEnabled) {
        // RFC 6675 §5 step (C): send while cwnd − pipe ≥ 1 SMSS.
        if (this.cc.cwnd - this.scoreboard.pipe(this.sndUna, this.sndMax, this.sendMss) < this.sendMss) break;
        const lost = this.scoreboard.nextLost(this.sndUna, this.sendMss);
        if (lost) {
          this.retransmitAt(lost.seq, lost.length);
          this.scoreboard.highRxt = seqAdd(lost.seq, lost.length);
          continue;
        }
        if (!this.sendNewData(true)) break;
        continue;
      }
      if (!this.sendNewData(false)) break;
    }
    this.armPersistIfNeeded();
  }

  /** One segment of new data (or the FIN) from SND.NXT; false when nothing may go. */
  private sendNewData(pipeLimited: boolean): boolean {
    const dataEnd = this.dataEnd();
    const unsent = Math.max(0, seqDiff(dataEnd, this.sndNxt));
    const inFlight = seqDiff(this.sndNxt, this.sndUna);
    const window = pipeLimited ? this.sndWnd : Math.min(this.sndWnd, this.cc.cwnd + this.limitedTransmitAllowance());
    const usable = pipeLimited ? this.windowRoom(this.sndNxt) : window - inFlight;
    // The FIN is due while SND.NXT has not passed it: never sent yet, or sent and then gone back
    // over by a go-back (RTO, smaller path MTU), which must resend it with the last data.
    const wantFin = this.finQueued && seqLe(this.sndNxt, this.finSequence());
    if (unsent === 0) {
      if (wantFin && this.sndNxt === dataEnd) {
        this.sendFin();
        return true;
      }
      return false;
    }
    if (usable <= 0) return false;
    let length = Math.min(unsent, usable, this.sendMss);
    const full = length === this.sendMss;
    const allQueued = length === unsent;
    // Sender SWS avoidance + Nagle: full segments, or everything queued when nothing is
    // unacknowledged (or Nagle is off), or at least half the peer's largest window.
    // Data going again after a go-back (RTO, smaller path MTU) was sent once already: not held.
    const sendable =
      full ||
      (allQueued && (this.noDelay || inFlight === 0 || wantFin)) ||
      (this.maxSndWnd > 0 && length >= this.maxSndWnd / 2) ||
      (inFlight === 0 && length > 0) ||
      seqLt(this.sndNxt, this.sndMax);
    if (!sendable) return false;
    length = Math.max(0, length);
    const fin = wantFin && seqAdd(this.sndNxt, length) === dataEnd;
    const flags = TcpFlag.ACK | (fin ? TcpFlag.FIN : 0) | (seqAdd(this.sndNxt, length) === dataEnd ? TcpFlag.PSH : 0);
    const sent = this.transmit(this.sndNxt, length, flags);
    if (!this.rtt.timing && !this.timestampsEnabled && this.sndNxt === this.sndMax) this.rtt.time(this.sndNxt, this.host.clock.now());
    this.sndNxt = seqAdd(this.sndNxt, sent + (fin && sent === length ? 1 : 0));
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    this.armRetransmit();
    return true;
  }

  /** A FIN alone at SND.NXT, after all the data: it takes one sequence number and is timed for retransmission. */
  private sendFin(): void {
    this.transmit(this.sndNxt, 0, TcpFlag.ACK | TcpFlag.FIN);
    this.sndNxt = seqAdd(this.sndNxt, 1);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    this.armRetransmit();
  }

  /** Retransmit one segment starting at `seq` (fast retransmit, partial ACK, SACK hole). */
  private retransmitAt(seq: number, maxLength = this.sendMss, track = true): void {
    const dataEnd = this.dataEnd();
    // No further than the peer's window still reaches, when it reaches past `seq` at all (a peer
    // may drop a segment that ends beyond its window, as Linux does with a non-empty receive
    // queue); with the window shut, the segment goes whole as a probe.
    const room = this.windowRoom(seq);
    const length = Math.max(0, Math.min(maxLength, seqDiff(dataEnd, seq), room > 0 ? room : Infinity));
    const fin = this.finQueued && this.finSent() && seqAdd(seq, length) === this.finSequence();
    if (length === 0 && !fin) return;
    this.countRetransmission();
    const sent = this.transmit(seq, length, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0));
    this.rtt.forgetTimed();
    // A resend filled from the queue (less than a segment was in flight) carries bytes never sent
    // before: they are sent now, or their ACK would be taken for one of unsent data and dropped
    // (RFC 9293 §3.10.7.4) while the peer, holding them, never acknowledges less — a stall.
    const end = seqAdd(seq, sent + (fin ? 1 : 0));
    if (seqLt(this.sndMax, end)) {
      if (this.sndNxt === this.sndMax) this.sndNxt = end;
      this.sndMax = end;
    }
    if (track && this.inRecovery && this.sackEnabled && sent > 0) {
      this.recoveryRetransmissions = [...this.recoveryRetransmissions, { seq, end: seqAdd(seq, sent), sentBefore: this.sndMax }];
    }
  }

  /** Bytes from `seq` to the right edge of the peer's window (negative past it). */
  private windowRoom(seq: number): number {
    return seqDiff(seqAdd(this.sndUna, this.sndWnd), seq);
  }

  private armRetransmit(): void {
    if (!this.retransmitTimer.armed) this.retransmitTimer.arm(this.rtt.rto);
  }

  private armPersistIfNeeded(): void {
    // RFC 9293 §3.8.6.1: a zero window with data waiting and nothing in flight → persist timer.
    const unsent = seqDiff(this.dataEnd(), this.sndNxt) > 0 || (this.finQueued && !this.finSent());
    if (this.sndWnd === 0 && unsent && this.sndNxt === this.sndUna && !this.retransmitTimer.armed) {
      if (!this.persistTimer.armed) this.persistTimer.arm(this.persistTimeout());
    }
  }

  private persistTimeout(): number {
    const o = this.host.options;
    return Math.min(o.maxPersistTimeout, Math.max(o.minRto, this.rtt.rto) * 2 ** this.persistBackoff);
  }

  /**
   * Build and send a segment from the send buffer. Payload is limited so header + options + data
   * stay within the peer's MSS + 40 (RFC 6691). Returns the payload bytes sent.
   */
  private transmit(seq: number, length: number, flags: number): number {
    const sack = this.sackBlocks();
    const timestamp = this.timestampsEnabled ? { value: this.tsval(), echo: this.tsRecent } : undefined;
    const sackCount = sack.length === 0 ? 0 : Math.min(sack.length, maxSackBlocks({ timestamp }));
    const optionBytes = (timestamp ? TIMESTAMP_OPTION_LENGTH : 0) + (sackCount > 0 ? 4 + 8 * sackCount : 0);
    const maxPayload = Math.max(1, this.peerMss - optionBytes);
    if (length > maxPayload) {
      length = maxPayload;
      flags &= ~TcpFlag.FIN;
    }
    const repr: TcpRepr = {
      sourcePort: this.localPort,
      destinationPort: this.remotePort,
      sequence: seq,
      acknowledgment: this.rcvNxt,
      flags,
      window: this.advertiseWindow(),
      timestamp,
      sackBlocks: sackCount > 0 ? sack.slice(0, sackCount) : undefined,
      // Read in place from the send buffer: emit copies it into the segment once, then checksums.
      payload: length > 0 ? this.sendBuffer.view(seqDiff(seq, this.sendStart), length) : NO_PAYLOAD,
    };
    // Carved from a slab (IP copies it into its frame): no ArrayBuffer of its own per segment.
    const segment = allocateFrame(TcpRepr.segmentLength(repr));
    TcpRepr.emit(repr, segment, this.localAddress, this.remoteAddress);
    this.afterSend(flags);
    this.host.stats.bytesSent += length;
    this.send(segment);
    return length;
  }

  private afterSend(flags: number): void {
    if (flags & TcpFlag.ACK) {
      this.lastAckSent = this.rcvNxt;
      this.segmentsSinceAck = 0;
      this.ackNow = false;
      this.delayedAckTimer.cancel();
    }
    this.lastSendTime = this.host.clock.now();
  }

  private send(segment: Uint8Array): void {
    const result = this.host.send(this, segment);
    if (!result.ok && (result.code === 'EHOSTUNREACH' || result.code === 'ENETUNREACH')) this.softError = result.code;
  }

  /** SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), with our options. */
  private sendSyn(): void {
    this.sendSynSegment();
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    if (this.retransmits === 0) this.rtt.time(this.iss, this.host.clock.now());
    this.retransmitTimer.arm(this.rtt.rto);
  }

  private sendSynSegment(): void {
    const synAck = this.state === 'SYN-RECEIVED';
    const o = this.host.options;
    // RFC 7323 §1.3, RFC 2018 §2: a SYN-ACK carries only options the SYN offered.
    const windowScale = synAck ? (this.wsAgreed ? this.rcvScale : undefined) : this.offerWindowScale ? windowScaleFor(o.receiveBufferSize) : undefined;
    const timestamps = synAck ? this.timestampsEnabled : this.offerTimestamps;
    const sack = synAck ? this.sackEnabled : this.offerSack;
    const window = Math.min(0xffff, this.receiveBufferFree());
    this.rcvAdv = seqAdd(this.rcvNxt, window);
    const repr: TcpRepr = {
      sourcePort: this.localPort,
      destinationPort: this.remotePort,
      sequence: this.iss,
      acknowledgment: this.rcvNxt,
      flags: TcpFlag.SYN | (synAck ? TcpFlag.ACK : 0),
      window,
      maxSegmentSize: this.localMss,
      windowScale,
      sackPermitted: sack,
      timestamp: timestamps ? { value: this.tsval(), echo: synAck ? this.tsRecent : 0 } : undefined,
      payload: new Uint8Array(0),
    };
    if (synAck) this.lastAckSent = this.rcvNxt;
    this.lastSendTime = this.host.clock.now();
    this.send(TcpRepr.toBytes(repr, this.localAddress, this.remoteAddress));
  }

  /** Both SYNs carried the window-scale option (RFC 7323 §2.2). */
  wsAgreed = false;

  /** An ACK carrying the current window (and SACK, timestamps). */
  sendAck(): void {
    if (this.state === 'CLOSED' || this.state === 'SYN-SENT' || this.state === 'LISTEN') return;
    if (this.state === 'SYN-RECEIVED') {
      this.sendSynSegment();
      return;
    }
    // SND.MAX, not SND.NXT: after an RTO pulled SND.NXT back, an ACK with an old sequence number
    // would fail the peer's acceptability test and be dropped with its acknowledgment (BSD does the same).
    this.transmit(this.sndMax, 0, TcpFlag.ACK);
  }

  private flushAck(): void {
    if (this.ackNow) this.sendAck();
  }

  /** RFC 5961 §7: challenge and duplicate-triggered ACKs, at most `challengeAckLimit` a second. */
  private sendAckRateLimited(): void {
    if (this.challengeAckLimit.allow(this.host.clock.now())) this.sendAck();
    else this.host.stats.challengeAcksSuppressed++;
  }

  /**
   * A reset: the answer to `unacceptable`, an ACK for something we never sent (RFC 9293
   * §3.10.7.3, §3.10.7.4), or else the end of this connection (ABORT, §3.10.5), at SND.MAX with
   * RCV.NXT acknowledged.
   */
  private sendReset(unacceptable?: TcpRepr): void {
    this.host.stats.resetsSent++;
    this.send(
      unacceptable
        ? resetReplyTo(unacceptable, this.localAddress, this.remoteAddress)
        : resetSegment(this.localAddress, this.localPort, this.remoteAddress, this.remotePort, this.sndMax, this.rcvNxt),
    );
  }

  // ===================================================================================
  // Receive window (RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3)
  // ===================================================================================

  /** What the window may offer: the buffer's free space, up to the limit. */
  private receiveBufferFree(): number {
    return Math.min(this.receiveWindowLimit, Math.max(0, this.host.options.receiveBufferSize - this.receiveQueue.length));
  }

  /** The window field for an outgoing segment; moves RCV.ADV right only in SWS-safe steps. */
  private advertiseWindow(): number {
    const bufferSize = this.receiveWindowLimit;
    const free = this.receiveBufferFree();
    const candidate = seqAdd(this.rcvNxt, free);
    // RFC 1122 §4.2.3.3: open the window only by at least min(buffer/2, MSS), or when it is all free.
    const threshold = Math.min(bufferSize / 2, this.localMss);
    const promised = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    let window = promised;
    if (seqDiff(candidate, this.rcvAdv) >= threshold || (free === bufferSize && free > promised)) window = free;
    const unit = 2 ** this.rcvScale;
    let field = Math.min(0xffff, Math.floor(window / unit));
    // Never shrink the right edge already promised (RFC 9293 §3.8.6.2.2): round that one up.
    if (field * unit < promised) field = Math.min(0xffff, Math.ceil(promised / unit));
    const right = seqAdd(this.rcvNxt, field * unit);
    if (seqGt(right, this.rcvAdv)) this.rcvAdv = right;
    return field;
  }

  /** After the application reads: tell the peer if the window grew by a useful amount. */
  private maybeSendWindowUpdate(): void {
    if (!isSynchronized(this.state) || this.finReceived) return;
    const free = this.receiveBufferFree();
    const candidate = seqAdd(this.rcvNxt, free);
    const threshold = Math.min(this.receiveWindowLimit / 2, this.localMss);
    const advertised = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    if (seqDiff(candidate, this.rcvAdv) >= threshold && (advertised < this.localMss * 2 || seqDiff(candidate, this.rcvAdv) >= 2 * this.localMss)) {
      this.host.stats.windowUpdates++;
      this.sendAck();
    }
  }

  // ===================================================================================
  // Timers
  // ===================================================================================

  /** RFC 6298 §5.4–5.7. */
  private onRetransmitTimeout(): void {
    const o = this.host.options;
    this.host.stats.retransmitTimeouts++;
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') {
      if (this.retransmits >= o.maxSynRetransmissions) {
        if (this.passive) this.release();
        else this.fail(this.softError ?? 'ETIMEDOUT');
        return;
      }
      this.retransmits++;
      this.rtt.backoff();
      this.rtt.forgetTimed();
      this.countRetransmission();
      this.sendSynSegment();
      this.retransmitTimer.arm(this.rtt.rto);
      return;
    }
    if (this.sndUna === this.sndMax) return;
    if (this.retransmits >= o.maxRetransmissions) {
      this.sendReset();
      this.fail(this.softError ?? 'ETIMEDOUT');
      return;
    }
    const flight = seqDiff(this.sndMax, this.sndUna);
    // RFC 5681 §3.1: ssthresh from the first timeout only; cwnd = 1 segment.
    if (this.retransmits === 0) this.cc.onRetransmitTimeout(flight, this.host.clock.now());
    else this.cc.setCwnd(this.sendMss);
    this.retransmits++;
    this.rtt.backoff();
    this.rtt.forgetTimed();
    this.abandonRecovery();
    // RFC 2018 §8: the receiver may have reneged; forget SACK state after a timeout.
    this.scoreboard.clear();
    this.scoreboard.highRxt = this.sndUna;
    // Go back to SND.UNA and resend from there as the window allows.
    this.sndNxt = this.sndUna;
    this.countRetransmission();
    if (!this.sendNewDataIgnoringWindow()) this.transmit(this.sndUna, 0, TcpFlag.ACK);
    this.retransmitTimer.arm(this.rtt.rto);
  }

  /** The RTO retransmission goes out even if the peer's window has since closed (it is already in flight). */
  private sendNewDataIgnoringWindow(): boolean {
    const length = this.segmentLengthAt(this.sndNxt);
    if (length === 0) return false;
    const dataEnd = this.dataEnd();
    // As far as the peer's window reaches, when it reaches past SND.NXT at all (a peer may drop a
    // segment that ends beyond its window: Linux does while its receive queue holds data); with
    // the window shut, what was in flight goes again as it was, a probe.
    const room = this.windowRoom(this.sndNxt);
    const allowed = room > 0 ? room : seqDiff(this.sndMax, this.sndNxt);
    const dataLength = Math.max(0, Math.min(this.sendMss, seqDiff(dataEnd, this.sndNxt), allowed));
    const fin = this.finQueued && seqAdd(this.sndNxt, dataLength) === dataEnd;
    if (dataLength === 0 && !fin) return false;
    const sent = this.transmit(this.sndNxt, dataLength, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0));
    this.sndNxt = seqAdd(this.sndNxt, sent + (fin && sent === dataLength ? 1 : 0));
    // An ACK for bytes past the old SND.MAX must stay acceptable (RFC 5961 §5.2 checks against it).
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    return true;
  }

  /** RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17: probe a zero window with one byte; back off. */
  private onPersistTimeout(): void {
    const o = this.host.options;
    if (this.sndWnd > 0 || !canSendData(this.state)) return;
    if (this.unansweredProbes >= o.maxRetransmissions) {
      this.sendReset();
      this.fail('ETIMEDOUT');
      return;
    }
    this.unansweredProbes++;
    this.host.stats.zeroWindowProbes++;
    const dataEnd = this.dataEnd();
    if (seqLt(this.sndNxt, dataEnd)) {
      this.transmit(this.sndNxt, 1, TcpFlag.ACK);
      // The probe byte is not in flight (no RTO, no duplicate ACKs), but an ACK covering it is valid.
      this.probeEnd = seqAdd(this.sndNxt, 1);
    } else if (this.finQueued && !this.finSent()) {
      this.sendFin();
      return;
    }
    this.persistBackoff++;
    this.persistTimer.arm(this.persistTimeout());
  }

  private restartKeepAlive(): void {
    if (this.keepAlive && (this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT')) this.keepAliveTimer.arm(this.keepAliveIdle);
    else this.keepAliveTimer.cancel();
  }

  /** RFC 1122 §4.2.3.6: after idle, probe with SEG.SEQ = SND.NXT − 1 and no data; give up after N. */
  private onKeepAliveTimeout(): void {
    const o = this.host.options;
    if (!this.keepAlive || !(this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT')) return;
    const now = this.host.clock.now();
    const idle = now - this.lastReceiveTime;
    if (this.keepAliveProbesSent === 0 && idle < this.keepAliveIdle) {
      this.keepAliveTimer.arm(this.keepAliveIdle - idle);
      return;
    }
    if (this.keepAliveProbesSent > 0 && idle < o.keepAliveInterval * this.keepAliveProbesSent) {
      this.keepAliveProbesSent = 0;
      this.keepAliveTimer.arm(this.keepAliveIdle - idle);
      return;
    }
    if (this.keepAliveProbesSent >= o.keepAliveProbes) {
      this.sendReset();
      this.fail('ETIMEDOUT');
      return;
    }
    this.keepAliveProbesSent++;
    this.host.stats.keepAliveProbes++;
    this.transmit(seqAdd(this.sndUna, -1), 0, TcpFlag.ACK);
    this.keepAliveTimer.arm(o.keepAliveInterval);
  }

  private onCloseTimeout(): void {
    if (this.state === 'TIME-WAIT' || (this.state === 'FIN-WAIT-2' && this.orphaned)) {
      this.release();
    }
  }

  // ===================================================================================
  // ICMP (RFC 1122 §4.2.3.9, RFC 5927)
  // ===================================================================================

  /** An ICMP error quoting one of our segments; `quotedSeq` must lie in [SND.UNA, SND.MAX] (RFC 5927 §4.1). */
  icmpError(kind: 'hard' | 'soft' | 'fragmentation-needed', quotedSeq: number, code: TcpErrorCode, nextHopMtu = 0): void {
    this.run(() => {
      if (seqLt(quotedSeq, this.sndUna) || seqGt(quotedSeq, this.sndMax)) return;
      if (kind === 'fragmentation-needed') {
        // RFC 1191: lower the MSS to fit the next hop, then resend what was in flight. A next-hop
        // MTU below the floor is used as the floor (0: a router too old to say, ignored).
        if (nextHopMtu === 0) return;
        if (nextHopMtu < this.host.options.minPathMtu) this.host.stats.pathMtuRaised++;
        const mss = Math.max(nextHopMtu, this.host.options.minPathMtu) - IPV4_TCP_HEADERS;
        if (mss < this.peerMss) {
          this.peerMss = mss;
          this.sendMss = sendMssFor(mss, this.timestampsEnabled);
          this.cc.setMss(this.sendMss);
          // Everything in flight was sent too big for the path and is gone: go back to SND.UNA
          // and send it all again in the new size, as far as cwnd allows — not one segment then
          // an RTO for the rest. Not a congestion signal (RFC 1191 §6.5), so cwnd stays; Linux's
          // tcp_simple_retransmit does the same. Karn: no RTT sample from what goes again. A SACK
          // recovery under way ends here: the go-back resends in order, limited by cwnd against
          // what is in flight (recovery's pipe would not count what goes again below SND.MAX).
          if (this.sndUna !== this.sndMax) {
            this.abandonRecovery();
            this.sndNxt = this.sndUna;
            this.rtt.forgetTimed();
            this.output();
          }
        }
        return;
      }
      // Hard errors abort only a connection still opening (RFC 5927 §4.2 recommends ignoring them later).
      if (kind === 'hard' && this.state === 'SYN-SENT') {
        this.fail(code);
        return;
      }
      this.softError = code;
    });
  }

  /**
   * ARP could not resolve the next hop to the peer: an opening connection fails with EHOSTUNREACH
   * (Linux's connect() after its ARP retries, ~3 s); a synchronized one keeps it as its soft error.
   */
  neighbourUnreachable(): void {
    this.run(() => {
      if (this.state === 'SYN-SENT') this.fail('EHOSTUNREACH');
      else this.softError = 'EHOSTUNREACH';
    });
  }

  // ===================================================================================
  // RTT (RFC 6298 §2)
  // ===================================================================================

  /**
   * The RTT sample an acknowledgment gives: with timestamps, the echo of any ACK (RFC 7323 §4.1);
   * else the timed segment's round trip, if this ACK covers it (RFC 6298 §3, Karn's algorithm).
   */
  private sampleAck(ack: number, timestamp: TcpTimestamp | undefined): void {
    const now = this.host.clock.now();
    let rtt: number | undefined;
    if (this.timestampsEnabled && timestamp && timestamp.echo !== 0) {
      rtt = timestampRtt(this.tsval(), timestamp.echo);
      this.rtt.forgetTimed();
    } else rtt = this.rtt.timedRoundTrip(ack, now);
    if (rtt !== undefined && this.rtt.sample(rtt)) this.cc.onRttSample?.(rtt, now);
  }

  /** Smoothed round-trip time (ms), undefined before the first sample. */
  get srtt(): number | undefined {
    return this.rtt.srtt;
  }

  get rttvar(): number {
    return this.rtt.rttvar;
  }

  /** The retransmission timeout (ms). */
  get rto(): number {
    return this.rtt.rto;
  }

  /** Our TSval now: the connection's timestamp clock (RFC 7323 §5.4). */
  private tsval(): number {
    return timestampClock(this.host.clock.now(), this.timestampOffset);
  }

  // ===================================================================================
  // Lifecycle and upcalls
  // ===================================================================================

  private fail(code: TcpErrorCode): void {
    this.error = code;
    this.pendingError = code;
    this.release();
  }

  /** Enter CLOSED and leave the tables. */
  private release(): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.retransmitTimer.stop();
    this.persistTimer.stop();
    this.delayedAckTimer.stop();
    this.keepAliveTimer.stop();
    this.closeTimer.stop();
    this.outOfOrder.clear();
    if (!this.pendingError) this.pendingClosed = true;
    this.host.released(this);
  }

  /** Run an entry point to completion, then deliver upcalls (never re-entrantly). */
  private run(body: () => void): void {
    this.dispatching++;
    try {
      body();
    } finally {
      this.dispatching--;
    }
    if (this.dispatching > 0) return;
    for (let seg = this.deferredSegments.shift(); seg; seg = this.deferredSegments.shift()) {
      this.dispatching++;
      try {
        this.receiveNow(seg);
      } finally {
        this.dispatching--;
      }
    }
    this.dispatch();
  }

  private dispatch(): void {
    const e = this.events;
    if (this.pendingConnect) {
      this.pendingConnect = false;
      e.onConnect?.();
    }
    if (this.pendingReadable) {
      this.pendingReadable = false;
      e.onReadable?.();
    }
    if (this.pendingWritable) {
      this.pendingWritable = false;
      e.onWritable?.();
    }
    if (this.pendingError) {
      const code = this.pendingError;
      this.pendingError = undefined;
      this.pendingClosed = false;
      e.onError?.(code);
    } else if (this.pendingClosed) {
      this.pendingClosed = false;
      e.onClosed?.();
    }
  }

  private countRetransmission(): void {
    this.retransmittedSegments++;
    this.host.stats.retransmittedSegments++;
  }

  /** The connection's internals as `ss -ti` shows them: a copy, for consoles and diagnostics. */
  info(): TcpConnectionInfo {
    const timers: { name: string; remainingMs: number }[] = [];
    const add = (name: string, t: RearmableTimer) => t.armed && timers.push({ name, remainingMs: t.remaining() ?? 0 });
    add('retransmit', this.retransmitTimer);
    add('persist', this.persistTimer);
    add('delayed-ack', this.delayedAckTimer);
    add('keepalive', this.keepAliveTimer);
    add(this.state === 'TIME-WAIT' ? 'time-wait' : 'fin-wait-2', this.closeTimer);
    return {
      state: this.state,
      iss: this.iss,
      irs: this.irs,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      sndMax: this.sndMax,
      sndWnd: this.sndWnd,
      rcvNxt: this.rcvNxt,
      rcvWnd: Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt)),
      receiveSpace: this.receiveBufferFree(),
      sendMss: this.sendMss,
      peerMss: this.peerMss,
      localMss: this.localMss,
      sndScale: this.sndScale,
      rcvScale: this.rcvScale,
      sack: this.sackEnabled,
      timestamps: this.timestampsEnabled,
      congestionControl: this.cc.name,
      cwnd: this.cc.cwnd,
      ssthresh: this.cc.ssthresh,
      srtt: this.srtt,
      rttvar: this.rttvar,
      rto: this.rto,
      backoff: this.retransmits,
      bytesInFlight: this.inRecovery && this.sackEnabled ? this.scoreboard.pipe(this.sndUna, this.sndMax, this.sendMss) : seqDiff(this.sndMax, this.sndUna),
      inRecovery: this.inRecovery,
      retransmittedSegments: this.retransmittedSegments,
      peerSackBlocks: this.scoreboard.sacked.map((b) => ({ left: b.left, right: b.right })),
      ourSackBlocks: this.sackBlocks().map((b) => ({ left: b.left, right: b.right })),
      sendQueue: this.sendQueueLength,
      unsent: Math.max(0, seqDiff(this.dataEnd(), this.sndNxt)),
      receiveQueue: this.readableLength,
      bytesAcked: Math.max(0, seqDiff(this.sndUna, this.iss) - 1),
      bytesReceived: this.irs === 0 && this.rcvNxt === 0 ? 0 : Math.max(0, seqDiff(this.rcvNxt, this.irs) - 1),
      timers,
    };
  }

  /** Which timer runs, for netstat (the Linux "timer" column). */
  timerInfo(): { timer: TcpTimerName; remaining: number } {
    const pick = (name: TcpTimerName, t: RearmableTimer) =>
      t.armed ? { timer: name, remaining: t.remaining() ?? 0 } : undefined;
    if (this.closeTimer.armed) return { timer: this.state === 'TIME-WAIT' ? 'time-wait' : 'fin-wait-2', remaining: this.closeTimer.remaining() ?? 0 };
    return (
      pick('retransmit', this.retransmitTimer) ??
      pick('persist', this.persistTimer) ??
      pick('delayed-ack', this.delayedAckTimer) ??
      pick('keepalive', this.keepAliveTimer) ?? { timer: 'off', remaining: 0 }
    );
  }
}

/** States in which the application may still queue data. */
function canQueueData(state: TcpState): boolean {
  return state === 'SYN-SENT' || state === 'SYN-RECEIVED' || state === 'ESTABLISHED' || state === 'CLOSE-WAIT';
}

/** States in which queued data (and the FIN) may go on the wire. */
function canSendData(state: TcpState): boolean {
  return state === 'ESTABLISHED' || state === 'CLOSE-WAIT' || state === 'FIN-WAIT-1' || state === 'LAST-ACK' || state === 'CLOSING';
}

export function isSynchronized(state: TcpState): boolean {
  return state !== 'CLOSED' && state !== 'LISTEN' && state !== 'SYN-SENT' && state !== 'SYN-RECEIVED';
}

/** RFC 7323 §2.3: the smallest shift that lets the 16-bit field express the whole buffer. */
export function windowScaleFor(bufferSize: number): number {
  let shift = 0;
  while (shift < TCP_MAX_WINDOW_SCALE && bufferSize >> shift > 0xffff) shift++;
  return shift;
}

export function connectionKey(localAddress: Ipv4Address, localPort: number, remoteAddress: Ipv4Address, remotePort: number): string {
  return `${localAddress >>> 0}:${localPort}:${remoteAddress >>> 0}:${remotePort}`;
}
