import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EthernetFrame, EthernetRepr, EtherType } from '../../src/wire/ethernet.js';
import { ArpOperation, ArpPacket, ArpRepr, ARP_PACKET_LENGTH } from '../../src/wire/arp.js';
import { formatIpv4, formatMac, parseIpv4 } from '../../src/wire/address.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });
const ipv4 = fc.integer({ min: 0, max: 0xffffffff });

// A real broadcast ARP request (who-has 24.166.173.159 tell 24.166.172.1), from a capture.
const REAL_ARP_REQUEST = hex(`
  ffffffffffff 00070daff454 0806
  0001 0800 06 04 0001 00070daff454 18a6ac01 000000000000 18a6ad9f`);

describe('Ethernet II frames', () => {
  it('reads destination, source and EtherType of a real frame', () => {
    const frame = EthernetFrame.check(REAL_ARP_REQUEST);
    expect(frame.ok).toBe(true);
    if (!frame.ok) return;
    expect(formatMac(frame.destination)).toBe('ff:ff:ff:ff:ff:ff');
    expect(formatMac(frame.source)).toBe('00:07:0d:af:f4:54');
    expect(frame.etherType).toBe(EtherType.ARP);
    expect(frame.payload.length).toBe(28);
  });

  it('rejects a frame shorter than the 14-byte header as truncated', () => {
    const r = EthernetFrame.check(new Uint8Array(13));
    expect(r).toMatchObject({ ok: false, protocol: 'ethernet', reason: 'truncated' });
  });

  it('emit → check → parse gives back the same header and payload', () => {
    fc.assert(
      fc.property(mac, mac, fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 64 }), (dst, src, etherType, payload) => {
        const buffer = new Uint8Array(14 + payload.length);
        const at = EthernetRepr.emit({ destination: dst, source: src, etherType }, buffer);
        buffer.set(payload, at);
        const frame = EthernetFrame.check(buffer);
        if (!frame.ok) throw new Error('rejected');
        expect(EthernetRepr.parse(frame)).toEqual({ destination: dst, source: src, etherType });
        expect(frame.payload).toEqual(payload);
      }),
    );
  });
});

describe('ARP packets (RFC 826)', () => {
  it('parses a real request', () => {
    const packet = ArpPacket.check(REAL_ARP_REQUEST.subarray(14));
    if (!packet.ok) throw new Error(packet.reason);
    const repr = ArpRepr.parse(packet);
    expect(repr.operation).toBe(ArpOperation.REQUEST);
    expect(formatMac(repr.senderMac)).toBe('00:07:0d:af:f4:54');
    expect(formatIpv4(repr.senderIp)).toBe('24.166.172.1');
    expect(formatIpv4(repr.targetIp)).toBe('24.166.173.159');
  });

  it('emits the same bytes it parsed', () => {
    const packet = ArpPacket.check(REAL_ARP_REQUEST.subarray(14));
    if (!packet.ok) throw new Error(packet.reason);
    const out = new Uint8Array(ARP_PACKET_LENGTH);
    ArpRepr.emit(ArpRepr.parse(packet), out);
    expect(out).toEqual(REAL_ARP_REQUEST.subarray(14));
  });

  it('refuses hardware/protocol pairs other than Ethernet/IPv4 and unknown operations', () => {
    const bytes = REAL_ARP_REQUEST.slice(14);
    bytes[1] = 6; // IEEE 802 hardware type
    expect(ArpPacket.check(bytes)).toMatchObject({ ok: false, reason: 'unsupported-format' });
    const op = REAL_ARP_REQUEST.slice(14);
    op[7] = 3; // RARP request
    expect(ArpPacket.check(op)).toMatchObject({ ok: false, reason: 'bad-operation' });
    expect(ArpPacket.check(op.subarray(0, 27))).toMatchObject({ ok: false, reason: 'truncated' });
  });

  it('round-trips any request or reply', () => {
    fc.assert(
      fc.property(fc.constantFrom(ArpOperation.REQUEST, ArpOperation.REPLY), mac, ipv4, mac, ipv4, (operation, senderMac, senderIp, targetMac, targetIp) => {
        const repr = { operation, senderMac, senderIp, targetMac, targetIp };
        const out = new Uint8Array(ARP_PACKET_LENGTH);
        ArpRepr.emit(repr, out);
        const packet = ArpPacket.check(out);
        if (!packet.ok) throw new Error(packet.reason);
        expect(ArpRepr.parse(packet)).toEqual(repr);
      }),
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const e = EthernetFrame.check(bytes);
        if (e.ok) void e.etherType;
        const a = ArpPacket.check(bytes);
        if (a.ok) ArpRepr.parse(a);
      }),
      { numRuns: 2000 },
    );
  });

  it('addresses used in examples parse', () => {
    expect(parseIpv4('24.166.172.1')).toBe(0x18a6ac01);
  });
});
