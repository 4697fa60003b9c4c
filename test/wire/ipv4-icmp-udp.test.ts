import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Ipv4Packet, Ipv4Repr, IpProtocol } from '../../src/wire/ipv4.js';
import { IcmpPacket, IcmpRepr, IcmpType, parseQuotedDatagram } from '../../src/wire/icmp.js';
import { UdpPacket, UdpRepr, fillUdpChecksum } from '../../src/wire/udp.js';
import { formatIpv4, parseIpv4 } from '../../src/wire/address.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const ipv4 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 0, max: 0xffff });

/** Independent reference: the checksum by the RFC 1071 definition, straight from the bytes. */
function referenceFold(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

// The classic IPv4 header example (192.168.0.1 → 192.168.0.199, UDP, checksum b861).
const REAL_IPV4_HEADER = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
// A Windows ping: echo request id 1 seq 1, 32 bytes "abcdefghijklmnopqrstuvwabcdefghi".
const REAL_ECHO_REQUEST = hex('0800 4d5a 0001 0001 6162636465666768696a6b6c6d6e6f7071727374757677616263646566676869');

describe('IPv4 header (RFC 791)', () => {
  it('reads every field of a real header and verifies its checksum', () => {
    const bytes = new Uint8Array(0x73);
    bytes.set(REAL_IPV4_HEADER);
    const packet = Ipv4Packet.check(bytes);
    if (!packet.ok) throw new Error(packet.reason);
    expect(packet.verifyChecksum()).toBe(true);
    const repr = Ipv4Repr.parse(packet);
    expect(repr).toMatchObject({ protocol: IpProtocol.UDP, ttl: 64, payloadLength: 0x73 - 20, dontFragment: true, moreFragments: false, fragmentOffset: 0 });
    if (!('source' in repr)) throw new Error();
    expect(formatIpv4(repr.source)).toBe('192.168.0.1');
    expect(formatIpv4(repr.destination)).toBe('192.168.0.199');
  });

  it('re-emits the real header byte for byte', () => {
    const bytes = new Uint8Array(0x73);
    bytes.set(REAL_IPV4_HEADER);
    const packet = Ipv4Packet.check(bytes);
    if (!packet.ok) throw new Error();
    const repr = Ipv4Repr.parse(packet);
    if (!('source' in repr)) throw new Error();
    const out = new Uint8Array(20);
    Ipv4Repr.emit(repr, out);
    expect(out).toEqual(REAL_IPV4_HEADER);
  });

  it('rejects bad versions, short IHL, inconsistent lengths and a corrupt checksum', () => {
    const good = new Uint8Array(0x73);
    good.set(REAL_IPV4_HEADER);
    const v6 = good.slice();
    v6[0] = 0x65;
    expect(Ipv4Packet.check(v6)).toMatchObject({ ok: false, reason: 'bad-version' });
    const ihl = good.slice();
    ihl[0] = 0x44;
    expect(Ipv4Packet.check(ihl)).toMatchObject({ ok: false, reason: 'bad-header-length' });
    expect(Ipv4Packet.check(good.subarray(0, 0x72))).toMatchObject({ ok: false, reason: 'truncated' });
    const short = good.slice();
    short[3] = 19;
    expect(Ipv4Packet.check(short)).toMatchObject({ ok: false, reason: 'bad-length' });
    const corrupt = good.slice();
    corrupt[8] = 63;
    const packet = Ipv4Packet.check(corrupt);
    if (!packet.ok) throw new Error();
    expect(Ipv4Repr.parse(packet)).toMatchObject({ ok: false, reason: 'bad-checksum' });
  });

  it('skips options: the payload starts after IHL words', () => {
    const bytes = hex('4600 0020 0001 0000 4011 0000 0a000001 0a000002 01010100 deadbeefdeadbeef');
    const packet = Ipv4Packet.check(bytes);
    if (!packet.ok) throw new Error(packet.reason);
    expect(packet.headerLength).toBe(24);
    expect(packet.payload).toEqual(hex('deadbeefdeadbeef'));
  });

  it('ignores link padding beyond total length', () => {
    const bytes = new Uint8Array(46);
    Ipv4Repr.emit({ source: 1, destination: 2, protocol: 17, payloadLength: 8, ttl: 1 }, bytes);
    const packet = Ipv4Packet.check(bytes);
    if (!packet.ok) throw new Error();
    expect(packet.payload.length).toBe(8);
  });

  it('round-trips any header', () => {
    fc.assert(
      fc.property(
        ipv4, ipv4, fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 0x1fff }),
        (source, destination, protocol, payloadLength, ttl, tos, identification, dontFragment, moreFragments, offsetUnits) => {
          const repr = { source, destination, protocol, payloadLength, ttl, tos, identification, dontFragment, moreFragments, fragmentOffset: offsetUnits * 8 };
          const buffer = new Uint8Array(20 + payloadLength);
          Ipv4Repr.emit(repr, buffer);
          expect(referenceFold(buffer.subarray(0, 20))).toBe(0xffff);
          const packet = Ipv4Packet.check(buffer);
          if (!packet.ok) throw new Error(packet.reason);
          expect(Ipv4Repr.parse(packet)).toEqual(repr);
        },
      ),
    );
  });
});

describe('ICMPv4 (RFC 792)', () => {
  it('parses a real echo request and re-emits it byte for byte', () => {
    const packet = IcmpPacket.check(REAL_ECHO_REQUEST);
    if (!packet.ok) throw new Error();
    const repr = IcmpRepr.parse(packet);
    expect(repr).toMatchObject({ type: 'echo-request', identifier: 1, sequence: 1 });
    if (!('type' in repr)) throw new Error();
    const out = new Uint8Array(IcmpRepr.bufferLength(repr));
    IcmpRepr.emit(repr, out);
    expect(out).toEqual(REAL_ECHO_REQUEST);
  });

  it('reads the next-hop MTU of fragmentation-needed (RFC 1191 §4) and the quoted datagram', () => {
    const quote = new Uint8Array(28);
    Ipv4Repr.emit({ source: parseIpv4('10.0.0.1'), destination: parseIpv4('10.0.9.9'), protocol: 17, payloadLength: 1480, ttl: 64, dontFragment: true }, quote);
    quote.set(hex('c0000035 05c8 0000'), 20);
    const message = new Uint8Array(8 + quote.length);
    IcmpRepr.emit({ type: 'destination-unreachable', code: 4, nextHopMtu: 1280, quote }, message);
    expect(message[0]).toBe(IcmpType.DESTINATION_UNREACHABLE);
    const packet = IcmpPacket.check(message);
    if (!packet.ok) throw new Error();
    const repr = IcmpRepr.parse(packet);
    expect(repr).toMatchObject({ type: 'destination-unreachable', code: 4, nextHopMtu: 1280 });
    if (!('quote' in repr)) throw new Error();
    const quoted = parseQuotedDatagram(repr.quote);
    if ('ok' in quoted && !quoted.ok) throw new Error();
    if (!('header' in quoted)) throw new Error();
    expect(formatIpv4(quoted.header.destination)).toBe('10.0.9.9');
    expect(quoted.transportHeader.subarray(0, 4)).toEqual(hex('c0000035'));
  });

  it('refuses a corrupt checksum and a quote without 8 transport bytes', () => {
    const bad = REAL_ECHO_REQUEST.slice();
    bad[9] ^= 1;
    const packet = IcmpPacket.check(bad);
    if (!packet.ok) throw new Error();
    expect(IcmpRepr.parse(packet)).toMatchObject({ ok: false, reason: 'bad-checksum' });
    const quote = new Uint8Array(24);
    Ipv4Repr.emit({ source: 1, destination: 2, protocol: 17, payloadLength: 100, ttl: 1 }, quote);
    expect(parseQuotedDatagram(quote)).toMatchObject({ ok: false, reason: 'truncated' });
  });

  it('round-trips echo, unreachable, time-exceeded and parameter-problem', () => {
    const data = fc.uint8Array({ maxLength: 64 });
    const repr = fc.oneof(
      fc.record({ type: fc.constantFrom('echo-request' as const, 'echo-reply' as const), identifier: port, sequence: port, data }),
      fc.record({ type: fc.constant('destination-unreachable' as const), code: fc.constantFrom(0, 1, 2, 3, 5), nextHopMtu: fc.constant(0), quote: data }),
      fc.record({ type: fc.constant('destination-unreachable' as const), code: fc.constant(4), nextHopMtu: port, quote: data }),
      fc.record({ type: fc.constant('time-exceeded' as const), code: fc.constantFrom(0, 1), quote: data }),
      fc.record({ type: fc.constant('parameter-problem' as const), code: fc.constant(0), pointer: fc.integer({ min: 0, max: 255 }), quote: data }),
    );
    fc.assert(
      fc.property(repr, (r: IcmpRepr) => {
        const out = new Uint8Array(IcmpRepr.bufferLength(r));
        IcmpRepr.emit(r, out);
        expect(referenceFold(out)).toBe(0xffff);
        const packet = IcmpPacket.check(out);
        if (!packet.ok) throw new Error();
        expect(IcmpRepr.parse(packet)).toEqual(r);
      }),
    );
  });
});

describe('UDP (RFC 768)', () => {
  const source = parseIpv4('192.168.1.10');
  const destination = parseIpv4('192.168.1.1');

  it('matches a reference checksum over the pseudo-header, header and data', () => {
    const payload = new TextEncoder().encode('hello');
    const out = new Uint8Array(13);
    UdpRepr.emit({ sourcePort: 40000, destinationPort: 53 }, out, 0, source, destination, payload);
    const pseudo = hex('c0a8010a c0a80101 0011 000d');
    const zeroed = out.slice();
    zeroed[6] = 0;
    zeroed[7] = 0;
    const expected = ~referenceFold(Uint8Array.from([...pseudo, ...zeroed])) & 0xffff;
    expect((out[6]! << 8) | out[7]!).toBe(expected || 0xffff);
  });

  it('treats a zero checksum as "none computed" and accepts it', () => {
    const out = new Uint8Array(10);
    UdpRepr.emit({ sourcePort: 1, destinationPort: 2 }, out, 0, source, destination, Uint8Array.of(1, 2));
    out[6] = 0;
    out[7] = 0;
    const packet = UdpPacket.check(out);
    if (!packet.ok) throw new Error();
    expect(packet.verifyChecksum(source, destination)).toBe(true);
  });

  it('transmits a computed checksum of zero as 0xffff', () => {
    // Choose the last data word so that pseudo-header + datagram folds to 0xffff: checksum 0.
    const out = new Uint8Array(12);
    out.set([0, 1, 0, 2, 0, 12, 0, 0, 0, 0, 0, 0]);
    const pseudo = hex('c0a8010a c0a80101 0011 000c');
    const word = (0xffff - referenceFold(Uint8Array.from([...pseudo, ...out]))) & 0xffff;
    out[10] = word >>> 8;
    out[11] = word & 0xff;
    expect(referenceFold(Uint8Array.from([...pseudo, ...out]))).toBe(0xffff);
    fillUdpChecksum(out, 0, 12, source, destination);
    expect((out[6]! << 8) | out[7]!).toBe(0xffff);
    const packet = UdpPacket.check(out);
    if (!packet.ok) throw new Error();
    expect(packet.verifyChecksum(source, destination)).toBe(true);
  });

  it('rejects a length field below 8 or beyond the IP payload', () => {
    expect(UdpPacket.check(hex('0001 0002 0007 0000'))).toMatchObject({ ok: false, reason: 'bad-length' });
    expect(UdpPacket.check(hex('0001 0002 0010 0000'))).toMatchObject({ ok: false, reason: 'truncated' });
  });

  it('round-trips any datagram, and a flipped bit fails the checksum', () => {
    fc.assert(
      fc.property(ipv4, ipv4, port, port, fc.uint8Array({ maxLength: 100 }), fc.nat(), (src, dst, sourcePort, destinationPort, payload, flip) => {
        const out = new Uint8Array(8 + payload.length);
        UdpRepr.emit({ sourcePort, destinationPort }, out, 0, src, dst, payload);
        const packet = UdpPacket.check(out);
        if (!packet.ok) throw new Error();
        expect(UdpRepr.parse(packet, src, dst)).toEqual({ sourcePort, destinationPort });
        expect(packet.payload).toEqual(payload);
        const bit = flip % (out.length * 8);
        if (Math.floor(bit / 8) === 6 || Math.floor(bit / 8) === 7) return; // flipping the checksum field itself may yield 0 = none
        out[bit >> 3]! ^= 1 << (bit & 7);
        const again = UdpPacket.check(out);
        if (again.ok) expect(again.verifyChecksum(src, dst)).toBe(false);
      }),
    );
  });
});

describe('checked parsers', () => {
  it('never throw on arbitrary bytes, whatever the accessors read afterwards', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        const ip = Ipv4Packet.check(bytes);
        if (ip.ok) {
          Ipv4Repr.parse(ip);
          void ip.payload;
        }
        const icmp = IcmpPacket.check(bytes);
        if (icmp.ok) {
          const r = IcmpRepr.parse(icmp, false);
          if ('quote' in r) parseQuotedDatagram(r.quote);
        }
        const udp = UdpPacket.check(bytes);
        if (udp.ok) {
          UdpRepr.parse(udp, 1, 2);
          void udp.payload;
        }
        parseQuotedDatagram(bytes);
      }),
      { numRuns: 5000 },
    );
  });
});
