import type { Ipv4Address } from '../wire/address.js';
import { TcpFlag, TcpRepr, sequenceLength } from '../wire/tcp.js';
import { seqAdd } from './seq.js';

const NO_PAYLOAD = new Uint8Array(0);

/**
 * A reset segment from `source`:`sourcePort`. With an acknowledgment number it is
 * <SEQ=sequence><ACK=acknowledgment><CTL=RST,ACK>; without one, <SEQ=sequence><CTL=RST>
 * (RFC 9293 §3.10.7). A reset carries no options, data or window.
 */
export function resetSegment(
  source: Ipv4Address,
  sourcePort: number,
  destination: Ipv4Address,
  destinationPort: number,
  sequence: number,
  acknowledgment?: number,
): Uint8Array {
  const repr: TcpRepr = {
    sourcePort,
    destinationPort,
    sequence,
    acknowledgment: acknowledgment ?? 0,
    flags: acknowledgment === undefined ? TcpFlag.RST : TcpFlag.RST | TcpFlag.ACK,
    window: 0,
    payload: NO_PAYLOAD,
  };
  return TcpRepr.toBytes(repr, source, destination);
}

/**
 * The reset that answers `seg`, which arrived from `peer` at `local` and is not acceptable
 * (RFC 9293 §3.10.7.1 for a closed port, §3.10.7.2–§3.10.7.4 for an unacceptable ACK): if it
 * carries an ACK, <SEQ=SEG.ACK><CTL=RST>, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
 * The caller never answers a RST with one.
 */
export function resetReplyTo(seg: TcpRepr, local: Ipv4Address, peer: Ipv4Address): Uint8Array {
  if (seg.flags & TcpFlag.ACK) return resetSegment(local, seg.destinationPort, peer, seg.sourcePort, seg.acknowledgment);
  return resetSegment(local, seg.destinationPort, peer, seg.sourcePort, 0, seqAdd(seg.sequence, sequenceLength(seg.flags, seg.payload.length)));
}
