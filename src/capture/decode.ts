import { formatIpv4, formatMac } from '../wire/address.js';
import { ArpOperation, ArpPacket } from '../wire/arp.js';
import { EtherType, EthernetFrame } from '../wire/ethernet.js';
import { IcmpPacket, IcmpType } from '../wire/icmp.js';
import { IpProtocol, Ipv4Packet } from '../wire/ipv4.js';
import { UdpPacket } from '../wire/udp.js';
import { TcpFlag, TcpPacket } from '../wire/tcp.js';

/**
 * What a captured frame says, decoded for logs: one structured summary (the JSON-lines sink writes
 * it as is) and a one-line rendering in tcpdump's style (the text sink). Decoding never throws:
 * a frame that does not parse is summarised as far as it goes, with the reason it stopped.
 * Checksums are reported, not enforced, so a corrupted frame is still shown.
 */
export interface FrameSummary {
  readonly length: number;
  readonly source: string;
  readonly destination: string;
  readonly etherType: number;
  readonly arp?: ArpSummary;
  readonly ipv4?: Ipv4Summary;
  readonly icmp?: IcmpSummary;
  readonly udp?: UdpSummary;
  readonly tcp?: TcpSummary;
  /** Why decoding stopped early, e.g. 'ipv4: truncated'. */
  readonly malformed?: string;
}

export interface ArpSummary {
  readonly operation: 'request' | 'reply';
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

export interface Ipv4Summary {
  readonly source: string;
  readonly destination: string;
  readonly protocol: number;
  readonly ttl: number;
  readonly identification: number;
  readonly totalLength: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** In bytes. */
  readonly fragmentOffset: number;
  readonly checksumOk: boolean;
}

export interface IcmpSummary {
  readonly type: number;
  readonly code: number;
  /** Echo request/reply only. */
  readonly identifier?: number;
  readonly sequence?: number;
  readonly length: number;
  readonly checksumOk: boolean;
}

export interface UdpSummary {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** Payload bytes (the UDP length field minus the header). */
  readonly length: number;
  readonly checksumOk: boolean;
}

export interface TcpSummary {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** tcpdump's letters: S(YN) F(IN) R(ST) P(SH) .(ACK) U(RG) E(CE) W(CWR). */
  readonly flags: string;
  readonly sequence: number;
  readonly acknowledgment: number;
  readonly window: number;
  /** Payload bytes. */
  readonly length: number;
  readonly checksumOk: boolean;
}

export function decodeFrame(frame: Uint8Array): FrameSummary {
  const eth = EthernetFrame.check(frame);
  if (!eth.ok) return { length: frame.length, source: '?', destination: '?', etherType: 0, malformed: eth.toString() };
  const base = { length: frame.length, source: formatMac(eth.source), destination: formatMac(eth.destination), etherType: eth.etherType };
  switch (eth.etherType) {
    case EtherType.ARP:
      return { ...base, ...decodeArp(eth.payload) };
    case EtherType.IPV4:
      return { ...base, ...decodeIpv4(eth.payload) };
    default:
      return base;
  }
}

function decodeArp(bytes: Uint8Array): { arp?: ArpSummary; malformed?: string } {
  const arp = ArpPacket.check(bytes);
  if (!arp.ok) return { malformed: arp.toString() };
  return {
    arp: {
      operation: arp.operation === ArpOperation.REQUEST ? 'request' : 'reply',
      senderMac: formatMac(arp.senderHardwareAddress),
      senderIp: formatIpv4(arp.senderProtocolAddress),
      targetMac: formatMac(arp.targetHardwareAddress),
      targetIp: formatIpv4(arp.targetProtocolAddress),
    },
  };
}

function decodeIpv4(bytes: Uint8Array): Pick<FrameSummary, 'ipv4' | 'icmp' | 'udp' | 'tcp' | 'malformed'> {
  const ip = Ipv4Packet.check(bytes);
  if (!ip.ok) return { malformed: ip.toString() };
  const ipv4: Ipv4Summary = {
    source: formatIpv4(ip.source),
    destination: formatIpv4(ip.destination),
    protocol: ip.protocol,
    ttl: ip.ttl,
    identification: ip.identification,
    totalLength: ip.totalLength,
    dontFragment: ip.dontFragment,
    moreFragments: ip.moreFragments,
    fragmentOffset: ip.fragmentOffset,
    checksumOk: ip.verifyChecksum(),
  };
  // Only the first fragment carries the transport header.
  if (ip.fragmentOffset !== 0) return { ipv4 };
  const payload = ip.payload;
  switch (ip.protocol) {
    case IpProtocol.ICMP: {
      const icmp = IcmpPacket.check(payload);
      if (!icmp.ok) return { ipv4, malformed: icmp.toString() };
      const echo = icmp.type === IcmpType.ECHO_REQUEST || icmp.type === IcmpType.ECHO_REPLY;
      return {
        ipv4,
        icmp: {
          type: icmp.type,
          code: icmp.code,
          ...(echo ? { identifier: icmp.identifier, sequence: icmp.sequence } : {}),
          length: payload.length,
          // A first fragment holds only part of the message: its checksum cannot be checked.
          checksumOk: ip.moreFragments || icmp.verifyChecksum(),
        },
      };
    }
    case IpProtocol.UDP: {
      const udp = UdpPacket.check(payload);
      if (!udp.ok) return { ipv4, malformed: udp.toString() };
      const checksumOk = ip.moreFragments || udp.checksum === 0 || udp.verifyChecksum(ip.source, ip.destination);
      return { ipv4, udp: { sourcePort: udp.sourcePort, destinationPort: udp.destinationPort, length: udp.length - 8, checksumOk } };
    }
    case IpProtocol.TCP: {
      const tcp = decodeTcp(payload, ip.source, ip.destination, ip.moreFragments);
      return typeof tcp === 'string' ? { ipv4, malformed: tcp } : { ipv4, tcp };
    }
    default:
      return { ipv4 };
  }
}

/** tcpdump's flag letters and order: S F R P U E W, then '.' for ACK. */
const TCP_FLAG_LETTERS: readonly [number, string][] = [
  [TcpFlag.SYN, 'S'],
  [TcpFlag.FIN, 'F'],
  [TcpFlag.RST, 'R'],
  [TcpFlag.PSH, 'P'],
  [TcpFlag.URG, 'U'],
  [TcpFlag.ECE, 'E'],
  [TcpFlag.CWR, 'W'],
  [TcpFlag.ACK, '.'],
];

function decodeTcp(bytes: Uint8Array, source: number, destination: number, firstFragment: boolean): TcpSummary | string {
  const tcp = TcpPacket.check(bytes);
  if (!tcp.ok) return tcp.toString();
  let flags = '';
  for (const [bit, letter] of TCP_FLAG_LETTERS) if (tcp.flags & bit) flags += letter;
  return {
    sourcePort: tcp.sourcePort,
    destinationPort: tcp.destinationPort,
    flags: flags || 'none',
    sequence: tcp.sequence,
    acknowledgment: tcp.acknowledgment,
    window: tcp.window,
    length: tcp.payload.length,
    checksumOk: firstFragment || tcp.verifyChecksum(source, destination),
  };
}

const ICMP_NAMES: Record<number, string> = {
  0: 'echo reply',
  3: 'unreachable',
  4: 'source quench',
  5: 'redirect',
  8: 'echo request',
  11: 'time exceeded',
  12: 'parameter problem',
};

/**
 * tcpdump -e style: `out 02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff, ARP, Request who-has 192.0.2.1
 * tell 192.0.2.10, length 42` (time and direction are the sink's part).
 */
export function formatSummary(s: FrameSummary): string {
  const head = `${s.source} > ${s.destination}`;
  const bad = s.malformed ? ` [${s.malformed}]` : '';
  if (s.arp) {
    const a = s.arp;
    const body = a.operation === 'request' ? `Request who-has ${a.targetIp} tell ${a.senderIp}` : `Reply ${a.senderIp} is-at ${a.senderMac}`;
    return `${head}, ARP, ${body}, length ${s.length}`;
  }
  if (s.ipv4) {
    const ip = s.ipv4;
    const frag = ip.moreFragments || ip.fragmentOffset ? ` (frag id ${ip.identification} offset ${ip.fragmentOffset}${ip.moreFragments ? '+' : ''})` : '';
    const ipBad = ip.checksumOk ? '' : ' [bad ip cksum]';
    let body: string;
    if (s.icmp) {
      const i = s.icmp;
      const name = ICMP_NAMES[i.type] ?? `type ${i.type}`;
      body = `${ip.source} > ${ip.destination}: ICMP ${name}${i.identifier !== undefined ? `, id ${i.identifier}, seq ${i.sequence}` : `, code ${i.code}`}, length ${i.length}${i.checksumOk ? '' : ' [bad icmp cksum]'}`;
    } else if (s.udp) {
      const u = s.udp;
      body = `${ip.source}.${u.sourcePort} > ${ip.destination}.${u.destinationPort}: UDP, length ${u.length}${u.checksumOk ? '' : ' [bad udp cksum]'}`;
    } else if (s.tcp) {
      const t = s.tcp;
      body = `${ip.source}.${t.sourcePort} > ${ip.destination}.${t.destinationPort}: Flags [${t.flags}], seq ${t.sequence}, ack ${t.acknowledgment}, win ${t.window}, length ${t.length}${t.checksumOk ? '' : ' [bad tcp cksum]'}`;
    } else {
      body = `${ip.source} > ${ip.destination}: proto ${ip.protocol}, length ${ip.totalLength}`;
    }
    return `${head}, IPv4, ${body}${frag}${ipBad}${bad}`;
  }
  const type = s.etherType === EtherType.IPV6 ? 'IPv6' : `ethertype 0x${s.etherType.toString(16).padStart(4, '0')}`;
  return `${head}, ${type}, length ${s.length}${bad}`;
}
