import { parseIpv4, parseMac, MAC_BROADCAST, MAC_ZERO } from '../../src/wire/address.js';
import { ArpOperation, ArpRepr } from '../../src/wire/arp.js';
import { EtherType, EthernetRepr, ETHERNET_HEADER_LENGTH } from '../../src/wire/ethernet.js';
import { IcmpRepr } from '../../src/wire/icmp.js';
import { IpProtocol, Ipv4Repr } from '../../src/wire/ipv4.js';
import { UdpRepr } from '../../src/wire/udp.js';
import { internetChecksum, pseudoHeaderSum } from '../../src/wire/checksum.js';

/** Known frames for capture tests, built with the project's wire reprs. */
export const MAC_A = parseMac('02:00:00:00:00:0a');
export const MAC_B = parseMac('02:00:00:00:00:0b');
export const IP_A = parseIpv4('192.0.2.10');
export const IP_B = parseIpv4('192.0.2.1');

function ethernet(destination: Uint8Array, source: Uint8Array, etherType: number, payloadLength: number): { frame: Uint8Array; at: number } {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + payloadLength);
  return { frame, at: EthernetRepr.emit({ destination, source, etherType }, frame) };
}

export function arpRequest(): Uint8Array {
  const { frame, at } = ethernet(MAC_BROADCAST, MAC_A, EtherType.ARP, ArpRepr.bufferLength);
  ArpRepr.emit({ operation: ArpOperation.REQUEST, senderMac: MAC_A, senderIp: IP_A, targetMac: MAC_ZERO, targetIp: IP_B }, frame, at);
  return frame;
}

export function arpReply(): Uint8Array {
  const { frame, at } = ethernet(MAC_A, MAC_B, EtherType.ARP, ArpRepr.bufferLength);
  ArpRepr.emit({ operation: ArpOperation.REPLY, senderMac: MAC_B, senderIp: IP_B, targetMac: MAC_A, targetIp: IP_A }, frame, at);
  return frame;
}

function ipv4(source: number, destination: number, protocol: number, payloadLength: number, extra: Partial<Ipv4Repr> = {}) {
  const { frame, at } = ethernet(source === IP_A ? MAC_B : MAC_A, source === IP_A ? MAC_A : MAC_B, EtherType.IPV4, 20 + payloadLength);
  const payloadAt = Ipv4Repr.emit({ source, destination, protocol, payloadLength, ttl: 64, identification: 0x1234, ...extra }, frame, at);
  return { frame, at: payloadAt };
}

export function echo(type: 'echo-request' | 'echo-reply', identifier: number, sequence: number, dataLength = 56): Uint8Array {
  const repr: IcmpRepr = { type, identifier, sequence, data: new Uint8Array(dataLength).fill(0x61) };
  const forward = type === 'echo-request';
  const { frame, at } = ipv4(forward ? IP_A : IP_B, forward ? IP_B : IP_A, IpProtocol.ICMP, IcmpRepr.bufferLength(repr));
  IcmpRepr.emit(repr, frame, at);
  return frame;
}

export function udp(sourcePort: number, destinationPort: number, payload: Uint8Array): Uint8Array {
  const { frame, at } = ipv4(IP_A, IP_B, IpProtocol.UDP, 8 + payload.length);
  UdpRepr.emit({ sourcePort, destinationPort }, frame, at, IP_A, IP_B, payload);
  return frame;
}

/** A TCP segment without options (RFC 9293 §3.1), checksum filled. */
export function tcp(flags: number, sequence: number, acknowledgment: number, window: number, payload = new Uint8Array(0)): Uint8Array {
  const length = 20 + payload.length;
  const { frame, at } = ipv4(IP_A, IP_B, IpProtocol.TCP, length, { dontFragment: true });
  const view = new DataView(frame.buffer, at);
  view.setUint16(0, 49152);
  view.setUint16(2, 80);
  view.setUint32(4, sequence);
  view.setUint32(8, acknowledgment);
  view.setUint8(12, 5 << 4);
  view.setUint8(13, flags);
  view.setUint16(14, window);
  frame.set(payload, at + 20);
  view.setUint16(16, internetChecksum(frame, at, length, pseudoHeaderSum(IP_A, IP_B, IpProtocol.TCP, length)));
  return frame;
}

/** The two fragments of a 1000-byte echo request cut at 512 bytes of IP payload. */
export function fragmentedEcho(): [Uint8Array, Uint8Array] {
  const repr: IcmpRepr = { type: 'echo-request', identifier: 7, sequence: 1, data: new Uint8Array(992).fill(0x62) };
  const whole = new Uint8Array(IcmpRepr.bufferLength(repr));
  IcmpRepr.emit(repr, whole, 0);
  const first = ipv4(IP_A, IP_B, IpProtocol.ICMP, 512, { moreFragments: true, identification: 0x4242 });
  first.frame.set(whole.subarray(0, 512), first.at);
  const second = ipv4(IP_A, IP_B, IpProtocol.ICMP, whole.length - 512, { fragmentOffset: 512, identification: 0x4242 });
  second.frame.set(whole.subarray(512), second.at);
  return [first.frame, second.frame];
}
