import { EthernetRepr, EtherType } from '../src/wire/ethernet.js';
import { ArpRepr, ARP_PACKET_LENGTH } from '../src/wire/arp.js';
import { Ipv4Packet, Ipv4Repr, IpProtocol } from '../src/wire/ipv4.js';
import { internetChecksum, pseudoHeaderSum, sum16 } from '../src/wire/checksum.js';
import { IcmpRepr } from '../src/wire/icmp.js';
import { UdpRepr } from '../src/wire/udp.js';
import { TcpRepr } from '../src/wire/tcp.js';
import type { Ipv4Address, MacAddress } from '../src/wire/address.js';

/** Frame builders for the receive-path fuzzer: whole Ethernet frames from parts. */

export function ethernet(destination: MacAddress, source: MacAddress, etherType: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(14 + payload.length);
  EthernetRepr.emit({ destination, source, etherType }, frame);
  frame.set(payload, 14);
  return frame;
}

export interface Ipv4Fields {
  readonly source: Ipv4Address;
  readonly destination: Ipv4Address;
  readonly protocol: number;
  readonly ttl?: number;
  readonly identification?: number;
  readonly moreFragments?: boolean;
  readonly fragmentOffset?: number;
  readonly dontFragment?: boolean;
}

export function ipv4(fields: Ipv4Fields, payload: Uint8Array): Uint8Array {
  const packet = new Uint8Array(20 + payload.length);
  Ipv4Repr.emit({ ttl: 64, ...fields, payloadLength: payload.length }, packet, 0);
  packet.set(payload, 20);
  return packet;
}

export function udp(source: Ipv4Address, destination: Ipv4Address, sourcePort: number, destinationPort: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  UdpRepr.emit({ sourcePort, destinationPort }, out, 0, source, destination, data);
  return out;
}

export function tcp(source: Ipv4Address, destination: Ipv4Address, repr: TcpRepr): Uint8Array {
  return TcpRepr.toBytes(repr, source, destination);
}

export function icmp(repr: IcmpRepr): Uint8Array {
  const out = new Uint8Array(IcmpRepr.bufferLength(repr));
  IcmpRepr.emit(repr, out);
  return out;
}

export function arp(operation: 1 | 2, senderMac: MacAddress, senderIp: Ipv4Address, targetMac: MacAddress, targetIp: Ipv4Address): Uint8Array {
  const out = new Uint8Array(ARP_PACKET_LENGTH);
  ArpRepr.emit({ operation, senderMac, senderIp, targetMac, targetIp }, out, 0);
  return out;
}

export const ipv4Frame = (to: MacAddress, from: MacAddress, fields: Ipv4Fields, payload: Uint8Array) => ethernet(to, from, EtherType.IPV4, ipv4(fields, payload));

/**
 * Make an edited IPv4 frame's checksums right again (header, and TCP/UDP/ICMP over what is
 * there), so the edit reaches the layer above instead of stopping at a checksum.
 */
export function fixChecksums(frame: Uint8Array): void {
  if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) return;
  const ip = frame.subarray(14);
  const packet = Ipv4Packet.check(ip);
  if (!packet.ok) return;
  const headerLength = packet.headerLength;
  ip[10] = 0;
  ip[11] = 0;
  const headerSum = internetChecksum(ip, 0, headerLength);
  ip[10] = headerSum >>> 8;
  ip[11] = headerSum & 0xff;
  if (packet.isFragment) return;
  const payload = ip.subarray(headerLength, packet.totalLength);
  const at = packet.protocol === IpProtocol.TCP ? 16 : packet.protocol === IpProtocol.UDP ? 6 : packet.protocol === IpProtocol.ICMP ? 2 : -1;
  if (at < 0 || payload.length < at + 2) return;
  payload[at] = 0;
  payload[at + 1] = 0;
  const initial = packet.protocol === IpProtocol.ICMP ? 0 : pseudoHeaderSum(packet.source, packet.destination, packet.protocol, payload.length);
  let sum = ~sum16(payload, 0, payload.length, initial) & 0xffff;
  if (sum === 0 && packet.protocol === IpProtocol.UDP) sum = 0xffff;
  payload[at] = sum >>> 8;
  payload[at + 1] = sum & 0xff;
}
