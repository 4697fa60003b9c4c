import { formatIpv4 } from '../wire/address.js';
import { TcpFlag, type TcpRepr } from '../wire/tcp.js';
import type { TcpConnection, TcpConnectionInfo } from './connection.js';
import { seqDiff, seqGt, seqLt } from './seq.js';

/**
 * What TCP tells the trace hook (src/stats/trace.ts), in words: for a segment sent, what it
 * carries and what it does to the connection's timers and windows; for a segment received, what
 * changed in the connection because of it (a before/after comparison of `info()`). Only called
 * while tracing is on.
 */

function flagLetters(flags: number): string {
  let out = '';
  if (flags & TcpFlag.SYN) out += 'S';
  if (flags & TcpFlag.FIN) out += 'F';
  if (flags & TcpFlag.RST) out += 'R';
  if (flags & TcpFlag.PSH) out += 'P';
  if (flags & TcpFlag.ACK) out += '.';
  return out;
}

function endpoints(c: TcpConnection): string {
  return `${formatIpv4(c.localAddress)}:${c.localPort} ↔ ${formatIpv4(c.remoteAddress)}:${c.remotePort}`;
}

const ms = (value: number): string => `${value.toFixed(value < 10 ? 1 : 0)} ms`;

function timer(info: TcpConnectionInfo, name: string): { readonly remainingMs: number } | undefined {
  return info.timers.find((t) => t.name === name);
}

/** The socket's side of a segment about to leave: what the application queued. */
export function describeSocketOut(c: TcpConnection, info: TcpConnectionInfo): string {
  return `tcp ${endpoints(c)} ${info.state}: send buffer ${info.sendQueue} bytes (${info.unsent} not yet sent), ${info.receiveQueue} received bytes unread`;
}

/** A segment about to leave (`segment` is the TCP header and payload as emitted). */
export function describeSegmentOut(info: TcpConnectionInfo, segment: Uint8Array): string {
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
  const seq = view.getUint32(4);
  const ack = view.getUint32(8);
  const flags = segment[13]!;
  const window = view.getUint16(14);
  const length = segment.length - ((segment[12]! >> 4) * 4);
  const head = `[${flagLetters(flags)}] seq ${seq}${length > 0 ? `:${(seq + length) >>> 0}` : ''}${flags & TcpFlag.ACK ? ` ack ${ack}` : ''} win ${window}${info.rcvScale ? `<<${info.rcvScale}` : ''}, ${length} bytes`;
  const consumes = length > 0 || (flags & (TcpFlag.SYN | TcpFlag.FIN)) !== 0;
  const parts: string[] = [];
  if (flags & TcpFlag.RST) parts.push('reset: the connection ends here');
  else if (flags & TcpFlag.SYN) parts.push(flags & TcpFlag.ACK ? `SYN-ACK: our ISN ${info.iss}, offering MSS ${info.localMss}` : `SYN: opening with ISN ${info.iss}, offering MSS ${info.localMss}`);
  if (consumes && seqLt(seq, info.sndMax)) parts.push(`RETRANSMISSION (${info.retransmittedSegments} so far, backoff ${info.backoff}, RTO ${ms(info.rto)})`);
  else if (length > 0) parts.push(`new data; cwnd ${info.cwnd}, in flight ${info.bytesInFlight} → ${info.bytesInFlight + length}, peer window ${info.sndWnd}`);
  if (flags & TcpFlag.FIN) parts.push('FIN: we send no more data');
  if (!consumes && !(flags & TcpFlag.RST)) parts.push(`pure ACK: everything up to ${ack} received; delayed-ACK timer off`);
  if (consumes) {
    const rtx = timer(info, 'retransmit');
    parts.push(rtx ? `retransmit timer already running (fires in ${ms(rtx.remainingMs)})` : `retransmit timer starts (RTO ${ms(info.rto)})`);
  }
  return `${head}: ${parts.join('; ')}`;
}

/** What a received segment did to the connection, from its state before and after. */
export function describeSegmentIn(seg: TcpRepr, before: TcpConnectionInfo, after: TcpConnectionInfo): string {
  const length = seg.payload.length;
  const head = `[${flagLetters(seg.flags)}] seq ${seg.sequence}${length > 0 ? `:${(seg.sequence + length) >>> 0}` : ''}${seg.flags & TcpFlag.ACK ? ` ack ${seg.acknowledgment}` : ''} win ${seg.window}, ${length} bytes`;
  const parts: string[] = [];
  if (before.state !== after.state) parts.push(`state ${before.state} → ${after.state}`);
  const acked = seqDiff(after.sndUna, before.sndUna);
  if (acked > 0) parts.push(`acknowledges ${acked} new bytes (SND.UNA → ${after.sndUna})`);
  else if (seg.flags & TcpFlag.ACK && length === 0 && before.sndMax !== before.sndUna && !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN))) parts.push('duplicate ACK');
  const received = seqDiff(after.rcvNxt, before.rcvNxt);
  if (length > 0) {
    if (received > 0) parts.push(`${Math.min(received, length)} bytes in order into the receive buffer (${after.receiveQueue} unread)`);
    else if (seqLt(seg.sequence, before.rcvNxt)) parts.push('data already received: duplicate, ACKed again');
    else if (seqGt(seg.sequence, before.rcvNxt)) parts.push(`out of order (expected ${before.rcvNxt}): held, SACK ${after.ourSackBlocks.map((b) => `${b.left}-${b.right}`).join(' ') || 'off'}`);
  }
  if (after.srtt !== before.srtt && after.srtt !== undefined) parts.push(`RTT sample: srtt ${before.srtt === undefined ? '-' : ms(before.srtt)} → ${ms(after.srtt)}, RTO ${ms(after.rto)}`);
  if (after.cwnd !== before.cwnd) parts.push(`cwnd ${before.cwnd} → ${after.cwnd}${after.ssthresh !== before.ssthresh ? `, ssthresh ${before.ssthresh} → ${after.ssthresh}` : ''}`);
  if (after.inRecovery !== before.inRecovery) parts.push(after.inRecovery ? 'loss detected: fast retransmit, recovery starts' : 'recovery ends');
  if (after.sndWnd !== before.sndWnd) parts.push(`peer window ${before.sndWnd} → ${after.sndWnd}`);
  for (const name of ['retransmit', 'persist', 'delayed-ack', 'time-wait', 'fin-wait-2']) {
    const was = timer(before, name);
    const is = timer(after, name);
    if (was && !is) parts.push(`${name} timer stopped`);
    else if (!was && is) parts.push(`${name} timer started (${ms(is.remainingMs)})`);
    else if (was && is && is.remainingMs > was.remainingMs + 0.5) parts.push(`${name} timer restarted (${ms(is.remainingMs)})`);
  }
  if (seg.flags & TcpFlag.RST) parts.push('reset by the peer');
  return `${head}: ${parts.join('; ') || 'no change'}`;
}
