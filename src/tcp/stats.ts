/** TCP counters (the MIB-ish numbers `netstat -s` would show), owned by a Tcp instance. */
export interface TcpStats {
  /** Every segment that reached TCP, malformed, unmatched and resets included (tcpInSegs). */
  segmentsReceived: number;
  /** Every segment sent: connections', SYN cookies' and resets for unmatched segments (tcpOutSegs). */
  segmentsSent: number;
  retransmittedSegments: number;
  retransmitTimeouts: number;
  fastRetransmits: number;
  /** Retransmissions found lost in SACK recovery and sent again before the RTO (RFC 8985's inference). */
  lostRetransmissions: number;
  duplicateAcks: number;
  bytesSent: number;
  bytesAcked: number;
  bytesReceived: number;
  resetsSent: number;
  resetsReceived: number;
  resetsRateLimited: number;
  challengeAcks: number;
  challengeAcksSuppressed: number;
  windowUpdates: number;
  zeroWindowProbes: number;
  keepAliveProbes: number;
  activeOpens: number;
  passiveOpens: number;
  synCookiesSent: number;
  synCookiesAccepted: number;
  synCookiesRejected: number;
  /** Exceptions thrown by the application's socket callbacks, stopped at TCP's boundary (stats/containment.ts). */
  callbackExceptions: number;
  /** A peer's SYN announced an MSS below minPeerMss, raised to it. */
  peerMssRaised: number;
  /** An ICMP "fragmentation needed" gave a path MTU below minPathMtu, used as minPathMtu. */
  pathMtuRaised: number;
  /** Dropped segments by reason. */
  dropped: {
    malformed: number;
    badChecksum: number;
    noTimestamp: number;
    paws: number;
    outOfWindow: number;
    ackUnsent: number;
    ackTooOld: number;
    outOfOrderFull: number;
    acceptQueueFull: number;
    synQueueFull: number;
    broadcast: number;
    /** Our address and port on both sides (a LAND attack, RFC 4987 §4.1). */
    land: number;
  };
}

export function createTcpStats(): TcpStats {
  return {
    segmentsReceived: 0,
    segmentsSent: 0,
    retransmittedSegments: 0,
    retransmitTimeouts: 0,
    fastRetransmits: 0,
    lostRetransmissions: 0,
    duplicateAcks: 0,
    bytesSent: 0,
    bytesAcked: 0,
    bytesReceived: 0,
    resetsSent: 0,
    resetsReceived: 0,
    resetsRateLimited: 0,
    challengeAcks: 0,
    challengeAcksSuppressed: 0,
    windowUpdates: 0,
    zeroWindowProbes: 0,
    keepAliveProbes: 0,
    activeOpens: 0,
    passiveOpens: 0,
    synCookiesSent: 0,
    synCookiesAccepted: 0,
    synCookiesRejected: 0,
    callbackExceptions: 0,
    peerMssRaised: 0,
    pathMtuRaised: 0,
    dropped: {
      malformed: 0,
      badChecksum: 0,
      noTimestamp: 0,
      paws: 0,
      outOfWindow: 0,
      ackUnsent: 0,
      ackTooOld: 0,
      outOfOrderFull: 0,
      acceptQueueFull: 0,
      synQueueFull: 0,
      broadcast: 0,
      land: 0,
    },
  };
}
