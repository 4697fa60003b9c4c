/**
 * Segment sizes. The MSS counts the data a segment carries with no TCP options: a route's MTU
 * less the IPv4 and TCP headers (RFC 9293 §3.7.1, RFC 6691 §2), so options come out of it.
 */

/** The IPv4 (20) and TCP (20) headers without options. */
export const IPV4_TCP_HEADERS = 40;
/** The timestamps option as sent on every segment once agreed: NOP, NOP, kind, length, TSval, TSecr (RFC 7323 §3.2, Appendix A). */
export const TIMESTAMP_OPTION_LENGTH = 12;
/** The MTU of a route we know nothing about: the datagram every IPv4 host must accept (RFC 791 §3.1, RFC 1122 §3.3.3). */
const UNKNOWN_ROUTE_MTU = 576;

/** Our MSS over a route: the configured maximum, or less where the route's MTU is smaller; at least 1. */
export function localMssFor(maxSegmentSize: number, routeMtu: number | undefined): number {
  return Math.max(1, Math.min(maxSegmentSize, (routeMtu ?? UNKNOWN_ROUTE_MTU) - IPV4_TCP_HEADERS));
}

/** Data bytes per full-sized segment to a peer that receives `peerMss`: less the timestamps option when it rides on every segment. */
export function sendMssFor(peerMss: number, timestamps: boolean): number {
  return Math.max(1, peerMss - (timestamps ? TIMESTAMP_OPTION_LENGTH : 0));
}
