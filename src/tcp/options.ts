import type { CongestionControlFactory } from './congestion.js';
import { newReno } from './congestion.js';

/**
 * Every TCP tunable, with its default and the reason for it (lwIP's opt.h, in one object).
 * Times are milliseconds, sizes bytes.
 */
export interface TcpOptions {
  /**
   * Largest segment we offer to receive and send before the route MTU clamps it.
   * 1460 = Ethernet MTU 1500 − 20 (IPv4) − 20 (TCP). The per-connection value is
   * min(this, route MTU − 40) (RFC 9293 §3.7.1, RFC 6691).
   */
  maxSegmentSize: number;
  /**
   * MSS assumed when the peer sends no MSS option: 536 (RFC 9293 §3.7.1 MUST-15, RFC 1122 §4.2.2.6).
   */
  defaultPeerMss: number;
  /**
   * The smallest MSS taken from a peer's SYN; a smaller one is raised to it. 48, Linux's
   * tcp_min_snd_mss since CVE-2019-11479: a peer announcing MSS 1 would have us cut every byte
   * sent into its own segment (40 bytes of headers, a retransmission-queue and SACK entry each).
   */
  minPeerMss: number;
  /**
   * The smallest path MTU taken from an ICMP "fragmentation needed" (RFC 1191); a smaller one is
   * used as this. 552, Linux's min_pmtu (512 bytes of data + 40 of headers): RFC 1191 allows 68,
   * and an unauthenticated ICMP message saying so would shrink a connection's segments to 28 bytes.
   */
  minPathMtu: number;
  /** Send buffer per connection. 64 KiB keeps a 10 Mbit/s × 50 ms path full. */
  sendBufferSize: number;
  /** Receive buffer per connection: the most we advertise. 64 KiB, as Linux's initial rmem. */
  receiveBufferSize: number;
  /** Offer window scaling (RFC 7323 §2). On: buffers above 64 KiB need it; harmless otherwise. */
  windowScaling: boolean;
  /** Offer timestamps (RFC 7323 §3–5): RTT samples on every ACK and PAWS. On, as Linux. */
  timestamps: boolean;
  /** Offer SACK (RFC 2018) and use the peer's SACK blocks for loss recovery (RFC 6675). On, as Linux. */
  sack: boolean;

  /** RFC 6298 §2.1: RTO before any RTT sample: 1 s. */
  initialRto: number;
  /**
   * Floor of the computed RTO. RFC 6298 §2.4 says it SHOULD be 1 s; that value guards against
   * spurious timeouts when the RTT estimate is young or the peer holds its ACK, and costs a second
   * of silence every time a retransmission itself is lost or a tail segment gets no duplicate ACKs,
   * which on a lossy path dominates the transfer time. Default 300 ms:
   * above a peer's 200 ms delayed ACK (Linux, BSD, spinet) plus a LAN round trip, so a lone segment
   * whose ACK is held does not time out spuriously — the hazard the RFC's 1 s avoids. Linux gets the
   * same margin from RTO ≥ SRTT + 200 ms (TCP_RTO_MIN); smoltcp keeps 1 s, picoTCP uses 70 ms,
   * Zephyr starts at 200 ms. On longer paths the RTT samples (timestamps echo the held segment, so
   * they include the peer's ACK delay) lift the RTO above the floor. 1000 restores the RFC value.
   */
  minRto: number;
  /** RFC 6298 §2.5: "A maximum value MAY be placed on RTO provided it is at least 60 seconds." */
  maxRto: number;
  /**
   * Retransmissions of data before giving up with ETIMEDOUT. 12 (lwIP's TCP_MAXRTX) with exponential
   * backoff capped at maxRto ≈ 8 minutes, beyond RFC 1122 §4.2.3.5's R2 ≥ 100 s.
   */
  maxRetransmissions: number;
  /** SYN / SYN-ACK retransmissions before giving up: 6 (lwIP TCP_SYNMAXRTX) ≈ 127 s, ≥ RFC 1122's 3 minutes R2 for SYN is not required; Linux uses 6. */
  maxSynRetransmissions: number;

  /** Maximum segment lifetime; TIME-WAIT lasts 2 × MSL (RFC 9293 §3.4.2: MSL = 2 minutes, "an engineering choice"). 60 s as Linux/lwIP, so TIME-WAIT is 120 s. */
  msl: number;
  /**
   * How long an orphaned connection (the application closed it) may sit in FIN-WAIT-2 waiting for
   * the peer's FIN: 60 s, as Linux's tcp_fin_timeout. RFC 9293 leaves FIN-WAIT-2 open-ended.
   */
  finWait2Timeout: number;

  /** RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2: delay for an ACK, MUST be < 0.5 s. 200 ms, as Linux and BSD. */
  delayedAckTimeout: number;
  /** RFC 5681 §4.2: ACK at least every second full-sized segment. */
  ackEverySegments: number;

  /** Keepalive (RFC 1122 §4.2.3.6): idle time before the first probe, MUST default to ≥ 2 hours. */
  keepAliveIdle: number;
  /** Interval between unanswered keepalive probes: 75 s (BSD/Linux). */
  keepAliveInterval: number;
  /** Unanswered probes before the connection is dropped with ETIMEDOUT: 9 (BSD/Linux). */
  keepAliveProbes: number;

  /** Persist timer ceiling (RFC 9293 §3.8.6.1: probes back off exponentially). 60 s, as the RTO cap. */
  maxPersistTimeout: number;

  /** RFC 5681 §3.2: duplicate ACKs that trigger fast retransmit (DupThresh in RFC 6675). */
  duplicateAckThreshold: number;
  /**
   * Initial window in segments (RFC 5681 §3.1 / RFC 3390: min(4·MSS, max(2·MSS, 4380 bytes))).
   * 0 selects that formula; a number overrides it (RFC 6928 allows 10).
   */
  initialWindowSegments: number;
  /**
   * Congestion controller factory: `newReno` (RFC 5681/6582, the default: the RFCs' baseline),
   * `cubic` (RFC 9438, Linux's default loss-based controller: backs off to 0.7 rather than 0.5 of
   * the window and regrows by time, not per RTT — better on long or lossy paths) or `bbr`
   * (model-based after BBR v1: cwnd from measured bandwidth × minimum RTT, so random loss does not
   * shrink it — for lossy links such as radio; it does not yield to loss-based flows sharing a
   * bottleneck the way they yield to each other).
   */
  congestionControl: CongestionControlFactory;

  /**
   * Out-of-order segments kept per connection (bytes are already bounded by the receive window).
   * 0 (the default) means 64, so a window of small segments cannot make the queue expensive to
   * walk — or, when the receive buffer is larger, as many full-size segments as it holds (a 256 KiB
   * buffer with one hole near its left edge would otherwise drop everything past the 64th segment).
   */
  maxOutOfOrderSegments: number;

  /** Half-open connections per listener (SYN queue). Beyond it, SYN cookies (or drop). 256. */
  synBacklog: number;
  /** Accept-queue length when listen() gives none: 511, Node's default backlog. */
  defaultAcceptBacklog: number;
  /** Answer SYNs with SYN cookies once a listener's SYN queue is full (RFC 4987 §3.6). On, as Linux. */
  synCookies: boolean;

  /**
   * RFC 5961 §7: challenge ACKs per connection per second. 10. Per connection rather than global:
   * a global counter is the CVE-2016-5696 side channel (off-path inference of in-window sequence numbers).
   */
  challengeAckLimit: number;
  /** RSTs sent per second for segments that match no connection (RFC 9293 §3.10.7.1), Tcp-wide: 100. */
  resetRateLimit: number;

  /** Ephemeral ports (RFC 6335 §6: 49152–65535). */
  ephemeralPortFirst: number;
  ephemeralPortLast: number;
  /** IP TTL of our segments: 64 (RFC 1700 recommends 64; Linux default). */
  ttl: number;
}

export const TCP_DEFAULTS: Readonly<TcpOptions> = Object.freeze({
  maxSegmentSize: 1460,
  defaultPeerMss: 536,
  minPeerMss: 48,
  minPathMtu: 552,
  sendBufferSize: 64 * 1024,
  receiveBufferSize: 64 * 1024,
  windowScaling: true,
  timestamps: true,
  sack: true,
  initialRto: 1000,
  minRto: 300,
  maxRto: 60_000,
  maxRetransmissions: 12,
  maxSynRetransmissions: 6,
  msl: 60_000,
  finWait2Timeout: 60_000,
  delayedAckTimeout: 200,
  ackEverySegments: 2,
  keepAliveIdle: 2 * 3600_000,
  keepAliveInterval: 75_000,
  keepAliveProbes: 9,
  maxPersistTimeout: 60_000,
  duplicateAckThreshold: 3,
  initialWindowSegments: 0,
  congestionControl: newReno,
  maxOutOfOrderSegments: 0,
  synBacklog: 256,
  defaultAcceptBacklog: 511,
  synCookies: true,
  challengeAckLimit: 10,
  resetRateLimit: 100,
  ephemeralPortFirst: 49152,
  ephemeralPortLast: 65535,
  ttl: 64,
});

export function resolveTcpOptions(overrides: Partial<TcpOptions> = {}): TcpOptions {
  return { ...TCP_DEFAULTS, ...overrides };
}
