import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { EthernetFrame, EthernetRepr } from '../src/wire/ethernet.js';
import { ArpPacket, ArpRepr, ARP_PACKET_LENGTH } from '../src/wire/arp.js';
import { Ipv4Packet, Ipv4Repr, IPV4_MIN_HEADER_LENGTH } from '../src/wire/ipv4.js';
import { internetChecksum } from '../src/wire/checksum.js';
import { IcmpPacket, IcmpRepr, isIcmpErrorType, parseQuotedDatagram } from '../src/wire/icmp.js';
import { UdpPacket, UdpRepr } from '../src/wire/udp.js';
import { parseTcpOptions, TcpFlag, TcpPacket, TcpParseError, TcpRepr, type TcpRepr as TcpReprType } from '../src/wire/tcp.js';
import { emitDnsMessage, parseDnsMessage, DnsType, DNS_CLASS_IN, type DnsRecord } from '../src/app/dns/wire.js';
import { BOOTREPLY, BOOTREQUEST, emitDhcpMessage, parseDhcpMessage, type DhcpOptions } from '../src/app/dhcp/wire.js';
import { BoardFrame, encodeBoardFrame, encodeHello, FrameDecoder, parseBoardFrame, parseDone, parseHello } from '../hal/bridge/protocol.js';
import { boundaryByte, ipv4Address, macAddress, mutated, u16, u32 } from './mutate.js';

/**
 * One fuzz target per parser the stack runs on bytes from outside: Ethernet, ARP, IPv4 (options,
 * fragments), ICMP (errors quoting our own datagrams), UDP, TCP (options), DNS, DHCP and the
 * serial bridge's framing. Each input is structure-aware (mutate.ts); `run` parses it and checks
 * what must hold of any input — nothing thrown, lengths within the bytes, and for parsers with an
 * emitter, that what parsed re-emits to something that parses to the same meaning.
 */
export interface ParserTarget {
  readonly name: string;
  readonly input: fc.Arbitrary<Uint8Array>;
  /** Parse one input; throws FuzzInvariantError when an invariant breaks. */
  run(bytes: Uint8Array): void;
}

export class FuzzInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzInvariantError';
  }
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new FuzzInvariantError(message);
}

// ---------------------------------------------------------------- valid encodings

const ethernetFrame = fc.record({ destination: macAddress, source: macAddress, etherType: fc.oneof(fc.constantFrom(0x0800, 0x0806, 0x86dd, 0x8100, 0x05dc), u16), payload: fc.uint8Array({ maxLength: 1500 }) }).map((f) => {
  const out = new Uint8Array(14 + f.payload.length);
  EthernetRepr.emit({ destination: f.destination, source: f.source, etherType: f.etherType }, out);
  out.set(f.payload, 14);
  return out;
});

const arpPacket = fc.record({ operation: fc.constantFrom(1, 2, 3), senderMac: macAddress, senderIp: ipv4Address, targetMac: macAddress, targetIp: ipv4Address }).map((a) => {
  const out = new Uint8Array(ARP_PACKET_LENGTH);
  ArpRepr.emit({ operation: a.operation as 1 | 2, senderMac: a.senderMac, senderIp: a.senderIp, targetMac: a.targetMac, targetIp: a.targetIp }, out, 0);
  return out;
});

/** RFC 791 §3.1 options: EOL, NOP, security, LSRR, SSRR, record route, stream id, timestamp, and unknown kinds, with lengths right and wrong. */
const ipv4Option = fc.oneof(
  fc.constant(Uint8Array.of(0)),
  fc.constant(Uint8Array.of(1)),
  fc.tuple(fc.constantFrom(0x07, 0x83, 0x89, 0x44, 0x82, 0x88, 0x94), boundaryByte, fc.uint8Array({ maxLength: 38 })).map(([kind, length, rest]) => Uint8Array.of(kind, length, ...rest)),
);

/** An IPv4 header with options (IHL up to 15) and fragment fields, then a payload. */
export const ipv4Datagram = fc
  .record({
    source: ipv4Address,
    destination: ipv4Address,
    protocol: fc.constantFrom(1, 6, 17, 0, 255),
    ttl: fc.integer({ min: 0, max: 255 }),
    identification: u16,
    dontFragment: fc.boolean(),
    moreFragments: fc.boolean(),
    fragmentOffset: fc.integer({ min: 0, max: 8191 }).map((n) => n * 8),
    options: fc.array(ipv4Option, { maxLength: 6 }),
    payload: fc.uint8Array({ maxLength: 1480 }),
  })
  .map((d) => {
    let options = Buffer.concat(d.options).subarray(0, 40);
    options = options.length % 4 === 0 ? options : Buffer.concat([options, new Uint8Array(4 - (options.length % 4))]);
    const headerLength = IPV4_MIN_HEADER_LENGTH + options.length;
    const out = new Uint8Array(headerLength + d.payload.length);
    Ipv4Repr.emit({ ...d, payloadLength: d.payload.length }, out, 0);
    out.copyWithin(headerLength, IPV4_MIN_HEADER_LENGTH, IPV4_MIN_HEADER_LENGTH);
    out.set(options, IPV4_MIN_HEADER_LENGTH);
    out[0] = 0x40 | (headerLength / 4);
    const total = headerLength + d.payload.length;
    out[2] = total >>> 8;
    out[3] = total & 0xff;
    out[10] = 0;
    out[11] = 0;
    const checksum = internetChecksum(out, 0, headerLength);
    out[10] = checksum >>> 8;
    out[11] = checksum & 0xff;
    out.set(d.payload, headerLength);
    return out;
  });

const tcpOptionsRepr = fc.record(
  {
    maxSegmentSize: fc.oneof(u16, fc.constantFrom(0, 1, 48, 88, 536, 1460)),
    windowScale: fc.integer({ min: 0, max: 20 }),
    sackPermitted: fc.boolean(),
    sackBlocks: fc.array(fc.record({ left: u32, right: u32 }), { maxLength: 3 }),
    timestamp: fc.record({ value: u32, echo: u32 }),
  },
  { requiredKeys: [] },
);

const tcpRepr: fc.Arbitrary<TcpReprType> = fc
  .record({
    sourcePort: u16,
    destinationPort: u16,
    sequence: u32,
    acknowledgment: u32,
    flags: fc.integer({ min: 0, max: 0x1ff }),
    window: u16,
    urgentPointer: u16,
    payload: fc.uint8Array({ maxLength: 1460 }),
  })
  .chain((base) => tcpOptionsRepr.map((options) => ({ ...base, ...options, acknowledgment: base.flags & TcpFlag.ACK ? base.acknowledgment : 0 })));

/** TCP segments: from reprs with every option, and with raw option bytes (kinds with lengths 0, 1, overlong). */
const tcpSegment = fc.tuple(tcpRepr, ipv4Address, ipv4Address, fc.option(fc.uint8Array({ maxLength: 40 }), { freq: 3 })).map(([repr, source, destination, rawOptions]) => {
  const bytes = TcpRepr.toBytes(repr, source, destination);
  if (rawOptions === null) return bytes;
  const options = rawOptions.subarray(0, Math.floor(rawOptions.length / 4) * 4);
  const out = new Uint8Array(20 + options.length + repr.payload.length);
  out.set(bytes.subarray(0, 20));
  out.set(options, 20);
  out.set(repr.payload, 20 + options.length);
  out[12] = ((20 + options.length) / 4) << 4 | (out[12]! & 0x0f);
  return out;
});

const udpDatagram = fc.tuple(u16, u16, fc.uint8Array({ maxLength: 1472 }), ipv4Address, ipv4Address).map(([sourcePort, destinationPort, data, source, destination]) => {
  const out = new Uint8Array(8 + data.length);
  UdpRepr.emit({ sourcePort, destinationPort }, out, 0, source, destination, data);
  return out;
});

/** ICMP errors quoting a datagram of ours (IPv4 with options + a TCP or UDP header), echoes and other types. */
const icmpMessage = fc.oneof(
  fc.tuple(fc.constantFrom(3, 11, 12), fc.integer({ min: 0, max: 15 }), u16, fc.oneof(ipv4Datagram, fc.tuple(ipv4Datagram, tcpSegment).map(([ip, tcp]) => Buffer.concat([ip.subarray(0, (ip[0]! & 0xf) * 4), tcp])), fc.uint8Array({ maxLength: 64 })), fc.nat(600)).map(([type, code, mtu, quoted, cut]) => {
    const quote = quoted.subarray(0, Math.min(quoted.length, 28 + cut));
    const repr: IcmpRepr = type === 3 ? { type: 'destination-unreachable', code, nextHopMtu: mtu, quote } : type === 11 ? { type: 'time-exceeded', code, quote } : { type: 'parameter-problem', code, pointer: mtu & 0xff, quote };
    const out = new Uint8Array(IcmpRepr.bufferLength(repr));
    IcmpRepr.emit(repr, out);
    return out;
  }),
  fc.tuple(fc.boolean(), u16, u16, fc.uint8Array({ maxLength: 256 })).map(([request, identifier, sequence, data]) => {
    const repr: IcmpRepr = { type: request ? 'echo-request' : 'echo-reply', identifier, sequence, data };
    const out = new Uint8Array(IcmpRepr.bufferLength(repr));
    IcmpRepr.emit(repr, out);
    return out;
  }),
);

const dnsName = fc.array(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
const dnsRecord: fc.Arbitrary<DnsRecord> = fc.oneof(
  fc.record({ name: dnsName, type: fc.constant(DnsType.A), class: fc.constant(DNS_CLASS_IN), ttl: u32, data: fc.record({ kind: fc.constant('a' as const), address: u32 }) }),
  fc.record({ name: dnsName, type: fc.constant(DnsType.CNAME), class: fc.constant(DNS_CLASS_IN), ttl: u32, data: fc.record({ kind: fc.constant('name' as const), name: dnsName }) }),
  fc.record({ name: dnsName, type: fc.constant(16), class: fc.constant(DNS_CLASS_IN), ttl: u32, data: fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 64 }) }) }),
);
const dnsMessage = fc
  .record({
    id: u16,
    response: fc.boolean(),
    truncated: fc.boolean(),
    rcode: fc.integer({ min: 0, max: 15 }),
    questions: fc.array(fc.record({ name: dnsName, type: fc.constantFrom(1, 5, 28, 255), class: fc.constant(DNS_CLASS_IN) }), { maxLength: 2 }),
    answers: fc.array(dnsRecord, { maxLength: 4 }),
    authorities: fc.array(dnsRecord, { maxLength: 2 }),
    additionals: fc.array(dnsRecord, { maxLength: 2 }),
  })
  .map((m) => emitDnsMessage(m));
/** Compression pointers aimed anywhere: at themselves, forwards, in a loop. */
const dnsPointerGames = fc.tuple(dnsMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0x3fff })), { minLength: 1, maxLength: 3 })).map(([message, pointers]) => {
  const out = message.slice();
  for (const [at, target] of pointers) {
    const i = 12 + (at % Math.max(1, out.length - 13));
    out[i] = 0xc0 | (target >>> 8);
    out[i + 1] = target & 0xff;
  }
  return out;
});

const dhcpOptions: fc.Arbitrary<DhcpOptions> = fc.record(
  {
    messageType: fc.integer({ min: 0, max: 9 }),
    subnetMask: u32,
    routers: fc.array(ipv4Address, { maxLength: 3 }),
    dnsServers: fc.array(ipv4Address, { maxLength: 3 }),
    leaseTime: fc.oneof(u32, fc.constantFrom(0, 1, 0xffffffff)),
    serverIdentifier: ipv4Address,
    renewalTime: u32,
    rebindingTime: u32,
    message: fc.string({ maxLength: 20 }),
    domainName: dnsName,
    other: fc.array(fc.tuple(fc.integer({ min: 1, max: 254 }).filter((c) => ![1, 3, 6, 12, 15, 28, 50, 51, 53, 54, 55, 56, 57, 58, 59, 61].includes(c)), fc.uint8Array({ maxLength: 32 })), { maxLength: 4 }).map((entries) => new Map(entries)),
  },
  { requiredKeys: [] },
);
const dhcpMessage = fc.record({ op: fc.constantFrom(BOOTREQUEST, BOOTREPLY), xid: u32, chaddr: macAddress, yiaddr: ipv4Address, ciaddr: ipv4Address, options: dhcpOptions }).map((m) => emitDhcpMessage(m));

/** A stream of board frames (as the host reads them), in random chunks. */
const bridgeStream = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...Object.values(BoardFrame)), fc.boolean(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 112 }), fc.boolean()).map(([type, intAsserted, id, payload, ended]) =>
        encodeBoardFrame(type, { intAsserted, id, ack: id, consumed: id * 7 }, payload, ended && payload.length >= 4),
      ),
      fc.constant(encodeBoardFrame(BoardFrame.HELLO, { intAsserted: false, id: 0, ack: 0, consumed: 0 }, encodeHello({ version: 2, capabilities: 0x3fff, window: 256, maxPayload: 64, sessions: 1, resetCause: 0, pinCount: 20, csPin: 10, intPin: 2, resetPin: 9, analogCount: 6, a0Pin: 14, programBytes: 64, name: 'uno' }))),
      fc.constant(new Uint8Array(4)),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((frames) => Buffer.concat(frames));

// ---------------------------------------------------------------- targets

export const parserTargets: readonly ParserTarget[] = [
  {
    name: 'ethernet',
    input: mutated(ethernetFrame),
    run(bytes) {
      const frame = EthernetFrame.check(bytes);
      if (!frame.ok) return;
      invariant(frame.payload.length === bytes.length - 14, 'Ethernet payload length');
    },
  },
  {
    name: 'arp',
    input: mutated(arpPacket, 64),
    run(bytes) {
      const packet = ArpPacket.check(bytes);
      if (!packet.ok) return;
      const repr = ArpRepr.parse(packet);
      const again = new Uint8Array(ARP_PACKET_LENGTH);
      ArpRepr.emit(repr, again, 0);
      const reparsed = ArpPacket.check(again);
      invariant(reparsed.ok && isDeepStrictEqual(ArpRepr.parse(reparsed), repr), 'ARP re-emits to the same meaning');
    },
  },
  {
    name: 'ipv4',
    input: mutated(ipv4Datagram),
    run(bytes) {
      const packet = Ipv4Packet.check(bytes);
      if (!packet.ok) return;
      invariant(packet.headerLength >= 20 && packet.headerLength <= packet.totalLength && packet.totalLength <= bytes.length, 'IPv4 lengths within the bytes');
      invariant(packet.payload.length === packet.totalLength - packet.headerLength, 'IPv4 payload length');
      invariant(packet.fragmentOffset % 8 === 0 && packet.fragmentOffset <= 65528, 'IPv4 fragment offset');
      packet.verifyChecksum();
    },
  },
  {
    name: 'icmp',
    input: mutated(icmpMessage),
    run(bytes) {
      const packet = IcmpPacket.check(bytes);
      if (!packet.ok) return;
      for (const verify of [true, false]) {
        const repr = IcmpRepr.parse(packet, verify);
        if ('ok' in repr || !('quote' in repr)) continue;
        invariant(isIcmpErrorType(packet.type), 'an ICMP error type');
        const quoted = parseQuotedDatagram(repr.quote);
        if ('ok' in quoted) continue;
        invariant(quoted.transportHeader.length >= 8 && quoted.header.headerLength <= repr.quote.length, 'quoted datagram within the quote');
      }
    },
  },
  {
    name: 'udp',
    input: mutated(udpDatagram),
    run(bytes) {
      const packet = UdpPacket.check(bytes);
      if (!packet.ok) return;
      invariant(packet.payload.length + 8 <= bytes.length, 'UDP payload within the bytes');
      packet.verifyChecksum(0x0a000001, 0x0a000002);
    },
  },
  {
    name: 'tcp',
    input: mutated(tcpSegment),
    run(bytes) {
      const packet = TcpPacket.check(bytes);
      if (packet instanceof TcpParseError) return;
      parseTcpOptions(packet.options);
      const repr = TcpRepr.parse(packet, 0, 0, false);
      if (repr instanceof TcpParseError) return;
      const again = TcpPacket.check(TcpRepr.toBytes(repr, 0, 0));
      invariant(!(again instanceof TcpParseError), 'TCP re-emits to a segment');
      const reparsed = TcpRepr.parse(again, 0, 0);
      invariant(!(reparsed instanceof TcpParseError), 'TCP re-emitted segment parses');
      invariant(reparsed.sequence === repr.sequence && reparsed.flags === repr.flags && reparsed.window === repr.window && reparsed.payload.length === repr.payload.length, 'TCP re-emits to the same header');
      invariant(reparsed.maxSegmentSize === repr.maxSegmentSize && reparsed.windowScale === repr.windowScale && isDeepStrictEqual(reparsed.timestamp, repr.timestamp), 'TCP re-emits to the same options');
    },
  },
  {
    name: 'dns',
    input: mutated(fc.oneof(dnsMessage, dnsPointerGames), 600),
    run(bytes) {
      const parsed = parseDnsMessage(bytes);
      if (!parsed.ok) return;
      const again = parseDnsMessage(emitDnsMessage(parsed.message));
      invariant(again.ok, 'DNS re-emits to a message');
      invariant(again.message.id === parsed.message.id && again.message.answers.length === parsed.message.answers.length && again.message.questions.length === parsed.message.questions.length, 'DNS re-emits to the same sections');
    },
  },
  {
    name: 'dhcp',
    input: mutated(dhcpMessage, 600),
    run(bytes) {
      const parsed = parseDhcpMessage(bytes);
      if (!parsed.ok) return;
      const m = parsed.message;
      const again = parseDhcpMessage(emitDhcpMessage({ ...m, htype: m.htype }));
      invariant(again.ok, 'DHCP re-emits to a message');
      invariant(again.message.xid === m.xid && again.message.yiaddr === m.yiaddr && again.message.options.messageType === m.options.messageType, 'DHCP re-emits to the same fields');
      invariant(isDeepStrictEqual(again.message.options.routers, m.options.routers) && again.message.options.leaseTime === m.options.leaseTime, 'DHCP re-emits to the same options');
    },
  },
  {
    name: 'bridge',
    input: fc.tuple(mutated(bridgeStream, 400), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 })).map(([stream, chunks]) => Uint8Array.of(chunks.length, ...chunks, ...stream)),
    run(input) {
      const chunks = Array.from(input.subarray(1, 1 + input[0]!));
      const bytes = input.subarray(1 + input[0]!);
      // The host reads ended DATA frames too (caps bit 13): both decoders.
      for (const endedFrames of [false, true]) {
        let delivered = 0;
        const decoder = new FrameDecoder(
          (body) => {
            delivered++;
            const view = parseBoardFrame(body);
            if (!view) return;
            if (view.type === BoardFrame.HELLO) parseHello(view.payload);
            if (view.type === BoardFrame.DONE) parseDone(view.payload);
          },
          () => undefined,
          253,
          { endedFrames },
        );
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const size = chunks[i % chunks.length]!;
          decoder.push(bytes.subarray(at, at + size));
          at += size;
        }
        decoder.push(Uint8Array.of(0));
        invariant(delivered <= bytes.length, 'no more frames than bytes');
      }
    },
  },
];
