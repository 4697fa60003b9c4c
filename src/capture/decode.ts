import { formatIpv4, formatMac } from '../wire/address.js';
import { ArpOperation, ArpPacket } from '../wire/arp.js';
import { EtherType, EthernetFrame } from '../wire/ethernet.js';
import { IcmpPacket, IcmpType } from '../wire/icmp.js';
import { IpProtocol, Ipv4Packet } from '../wire/ipv4.js';
import { UdpPacket } from '../wire/udp.js';
import { TcpFlag, TcpPacket, TcpParseError, parseTcpOptions } from '../wire/tcp.js';

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
  readonly headerLength: number;
  readonly tos: number;
  readonly checksum: number;
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
  readonly checksum: number;
  readonly checksumOk: boolean;
}

export interface UdpSummary {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** Payload bytes (the UDP length field minus the header). */
  readonly length: number;
  /** 0: the sender computed none (allowed over IPv4). */
  readonly checksum: number;
  readonly checksumOk: boolean;
}

/** TCP options present on the wire (RFC 9293 §3.2, RFC 7323, RFC 2018). */
export interface TcpOptionsSummary {
  readonly mss?: number;
  readonly windowScale?: number;
  readonly sackPermitted?: boolean;
  readonly sack?: readonly { readonly left: number; readonly right: number }[];
  readonly timestamp?: { readonly value: number; readonly echo: number };
}

export interface TcpSummary {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** tcpdump's letters: S(YN) F(IN) R(ST) P(SH) .(ACK) U(RG) E(CE) W(CWR). */
  readonly flags: string;
  readonly sequence: number;
  readonly acknowledgment: number;
  readonly window: number;
  readonly headerLength: number;
  readonly urgentPointer: number;
  readonly options: TcpOptionsSummary;
  /** Payload bytes. */
  readonly length: number;
  readonly checksum: number;
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
    headerLength: ip.headerLength,
    tos: ip.tos,
    checksum: ip.checksum,
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
          checksum: icmp.checksum,
          // A first fragment holds only part of the message: its checksum cannot be checked.
          checksumOk: ip.moreFragments || icmp.verifyChecksum(),
        },
      };
    }
    case IpProtocol.UDP: {
      const udp = UdpPacket.check(payload);
      if (!udp.ok) return { ipv4, malformed: udp.toString() };
      const checksumOk = ip.moreFragments || udp.checksum === 0 || udp.verifyChecksum(ip.source, ip.destination);
      return { ipv4, udp: { sourcePort: udp.sourcePort, destinationPort: udp.destinationPort, length: udp.length - 8, checksum: udp.checksum, checksumOk } };
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
  const parsed = parseTcpOptions(tcp.options);
  const options: TcpOptionsSummary =
    parsed instanceof TcpParseError
      ? {}
      : {
          ...(parsed.maxSegmentSize !== undefined ? { mss: parsed.maxSegmentSize } : {}),
          ...(parsed.windowScale !== undefined ? { windowScale: parsed.windowScale } : {}),
          ...(parsed.sackPermitted ? { sackPermitted: true } : {}),
          ...(parsed.sackBlocks ? { sack: parsed.sackBlocks } : {}),
          ...(parsed.timestamp ? { timestamp: parsed.timestamp } : {}),
        };
  return {
    sourcePort: tcp.sourcePort,
    destinationPort: tcp.destinationPort,
    flags: flags || 'none',
    sequence: tcp.sequence,
    acknowledgment: tcp.acknowledgment,
    window: tcp.window,
    headerLength: tcp.headerLength,
    urgentPointer: tcp.urgentPointer,
    options,
    length: tcp.payload.length,
    checksum: tcp.checksum,
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
      const options = tcpOptionsText(t.options);
      body = `${ip.source}.${t.sourcePort} > ${ip.destination}.${t.destinationPort}: Flags [${t.flags}], seq ${t.sequence}, ack ${t.acknowledgment}, win ${t.window}${options ? `, options [${options}]` : ''}, length ${t.length}${t.checksumOk ? '' : ' [bad tcp cksum]'}`;
    } else {
      body = `${ip.source} > ${ip.destination}: proto ${ip.protocol}, length ${ip.totalLength}`;
    }
    return `${head}, IPv4, ${body}${frag}${ipBad}${bad}`;
  }
  const type = s.etherType === EtherType.IPV6 ? 'IPv6' : `ethertype 0x${s.etherType.toString(16).padStart(4, '0')}`;
  return `${head}, ${type}, length ${s.length}${bad}`;
}

/** One protocol layer of a frame, field by field (the console's frame view, `spinet log -v`). */
export interface DecodedLayer {
  readonly name: string;
  readonly fields: readonly (readonly [name: string, value: string])[];
}

const hex = (n: number, digits: number): string => `0x${n.toString(16).padStart(digits, '0')}`;

function tcpOptionsText(o: TcpOptionsSummary): string {
  const parts: string[] = [];
  if (o.mss !== undefined) parts.push(`mss ${o.mss}`);
  if (o.sackPermitted) parts.push('sackOK');
  if (o.timestamp) parts.push(`TS val ${o.timestamp.value} ecr ${o.timestamp.echo}`);
  if (o.windowScale !== undefined) parts.push(`wscale ${o.windowScale}`);
  if (o.sack) parts.push(`sack ${o.sack.length} {${o.sack.map((b) => `${b.left}:${b.right}`).join('}{')}}`);
  return parts.join(',');
}

/** The frame layer by layer: Ethernet, then ARP or IPv4, then ICMP/UDP/TCP, then the payload. */
export function frameLayers(s: FrameSummary): DecodedLayer[] {
  const layers: DecodedLayer[] = [];
  const type = s.etherType === EtherType.IPV4 ? 'IPv4' : s.etherType === EtherType.ARP ? 'ARP' : s.etherType === EtherType.IPV6 ? 'IPv6' : 'unknown';
  layers.push({
    name: 'Ethernet II',
    fields: [
      ['destination', s.destination],
      ['source', s.source],
      ['type', `${type} (${hex(s.etherType, 4)})`],
      ['frame length', `${s.length} bytes (without FCS)`],
    ],
  });
  if (s.arp) {
    const a = s.arp;
    layers.push({
      name: 'ARP',
      fields: [
        ['operation', a.operation],
        ['sender MAC', a.senderMac],
        ['sender IP', a.senderIp],
        ['target MAC', a.targetMac],
        ['target IP', a.targetIp],
      ],
    });
  }
  if (s.ipv4) {
    const ip = s.ipv4;
    const flags = [ip.dontFragment ? 'DF' : '', ip.moreFragments ? 'MF' : ''].filter(Boolean).join(' ') || 'none';
    layers.push({
      name: 'IPv4',
      fields: [
        ['source', ip.source],
        ['destination', ip.destination],
        ['header length', `${ip.headerLength} bytes`],
        ['total length', String(ip.totalLength)],
        ['tos', hex(ip.tos, 2)],
        ['identification', String(ip.identification)],
        ['flags', flags],
        ['fragment offset', String(ip.fragmentOffset)],
        ['ttl', String(ip.ttl)],
        ['protocol', `${ICMP_OR_TRANSPORT[ip.protocol] ?? 'other'} (${ip.protocol})`],
        ['header checksum', `${hex(ip.checksum, 4)} ${ip.checksumOk ? 'correct' : 'WRONG'}`],
      ],
    });
  }
  if (s.icmp) {
    const i = s.icmp;
    layers.push({
      name: 'ICMP',
      fields: [
        ['type', `${ICMP_NAMES[i.type] ?? 'other'} (${i.type})`],
        ['code', String(i.code)],
        ...(i.identifier !== undefined ? ([['identifier', String(i.identifier)], ['sequence', String(i.sequence)]] as const) : []),
        ['length', String(i.length)],
        ['checksum', `${hex(i.checksum, 4)} ${i.checksumOk ? 'correct' : 'WRONG'}`],
      ],
    });
  }
  if (s.udp) {
    const u = s.udp;
    layers.push({
      name: 'UDP',
      fields: [
        ['source port', String(u.sourcePort)],
        ['destination port', String(u.destinationPort)],
        ['length', `${u.length + 8} (${u.length} bytes of data)`],
        ['checksum', u.checksum === 0 ? '0x0000 (none)' : `${hex(u.checksum, 4)} ${u.checksumOk ? 'correct' : 'WRONG'}`],
      ],
    });
  }
  if (s.tcp) {
    const t = s.tcp;
    layers.push({
      name: 'TCP',
      fields: [
        ['source port', String(t.sourcePort)],
        ['destination port', String(t.destinationPort)],
        ['sequence', String(t.sequence)],
        ['acknowledgment', String(t.acknowledgment)],
        ['header length', `${t.headerLength} bytes`],
        ['flags', `[${t.flags}]`],
        ['window', String(t.window)],
        ['checksum', `${hex(t.checksum, 4)} ${t.checksumOk ? 'correct' : 'WRONG'}`],
        ['urgent pointer', String(t.urgentPointer)],
        ['options', tcpOptionsText(t.options) || 'none'],
        ['data', `${t.length} bytes`],
      ],
    });
  }
  if (s.malformed) layers.push({ name: 'Malformed', fields: [['stopped at', s.malformed]] });
  return layers;
}

const ICMP_OR_TRANSPORT: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' };

/** `spinet log -v`: the one-line summary, then each layer's fields indented beneath it. */
export function formatLayers(layers: readonly DecodedLayer[]): string {
  return layers.map((l) => `    ${l.name}: ${l.fields.map(([k, v]) => `${k} ${v}`).join(', ')}`).join('\n');
}

/** tcpdump -x: the bytes in hex, 16 a line, offsets first. */
export function formatHex(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const words: string[] = [];
    for (let i = at; i < Math.min(at + 16, bytes.length); i += 2) {
      words.push(bytes[i]!.toString(16).padStart(2, '0') + (i + 1 < bytes.length ? bytes[i + 1]!.toString(16).padStart(2, '0') : ''));
    }
    lines.push(`\t0x${at.toString(16).padStart(4, '0')}:  ${words.join(' ')}`);
  }
  return lines.join('\n');
}
