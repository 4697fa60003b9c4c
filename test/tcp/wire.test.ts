import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/wire/address.js';
import { TcpFlag, TcpPacket, TcpParseError, TcpRepr, maxSackBlocks, parseTcpOptions, type TcpRepr as Repr } from '../../src/wire/tcp.js';

const SRC = parseIpv4('10.0.0.1');
const DST = parseIpv4('10.0.0.2');

function parse(bytes: Uint8Array, verify = true): Repr | TcpParseError {
  const p = TcpPacket.check(bytes);
  if (p instanceof TcpParseError) return p;
  return TcpRepr.parse(p, SRC, DST, verify);
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 1, max: 0xffff });
const reprArb = fc.record({
  sourcePort: port,
  destinationPort: port,
  sequence: u32,
  acknowledgment: u32,
  flags: fc.integer({ min: 0, max: 0xff }),
  window: fc.integer({ min: 0, max: 0xffff }),
  maxSegmentSize: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  windowScale: fc.option(fc.integer({ min: 0, max: 14 }), { nil: undefined }),
  sackPermitted: fc.boolean(),
  timestamp: fc.option(fc.record({ value: u32, echo: u32 }), { nil: undefined }),
  sackBlocks: fc.option(fc.array(fc.record({ left: u32, right: u32 }), { minLength: 1, maxLength: 4 }), { nil: undefined }),
  payload: fc.uint8Array({ maxLength: 200 }),
});

describe('TCP wire format', () => {
  it('round-trips every representable header through emit and parse', () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        const bytes = TcpRepr.toBytes(repr, SRC, DST);
        expect(bytes.length).toBe(TcpRepr.segmentLength(repr));
        expect(TcpRepr.headerLength(repr) % 4).toBe(0);
        expect(TcpRepr.headerLength(repr)).toBeLessThanOrEqual(60);
        const parsed = parse(bytes);
        if (parsed instanceof TcpParseError) throw new Error(parsed.reason);
        const sackCount = Math.min(repr.sackBlocks?.length ?? 0, maxSackBlocks(repr));
        expect(parsed).toEqual({
          ...repr,
          acknowledgment: repr.flags & TcpFlag.ACK ? repr.acknowledgment : 0,
          urgentPointer: repr.flags & TcpFlag.URG ? 0 : undefined,
          sackBlocks: sackCount > 0 ? repr.sackBlocks!.slice(0, sackCount) : undefined,
        });
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on random bytes: a view or a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, verify) => {
        const r = parse(bytes, verify);
        expect(r instanceof TcpParseError || typeof r.sequence === 'number').toBe(true);
        const o = parseTcpOptions(bytes);
        expect(o instanceof TcpParseError || typeof o === 'object').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated valid segments, and any mutation of a checked byte is caught by the checksum', () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (repr, at, xor) => {
        const bytes = TcpRepr.toBytes(repr, SRC, DST);
        const i = at % bytes.length;
        bytes[i] = bytes[i]! ^ xor;
        const r = parse(bytes);
        // A single flipped byte changes one 16-bit word: the one's-complement sum always notices.
        expect(r instanceof TcpParseError).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('returns typed errors for short segments, bad data offsets, bad option lengths and port 0', () => {
    expect(parse(new Uint8Array(19))).toMatchObject({ ok: false, reason: 'truncated' });
    const base = TcpRepr.toBytes({ sourcePort: 1, destinationPort: 2, sequence: 0, acknowledgment: 0, flags: TcpFlag.SYN, window: 0, payload: new Uint8Array(0) }, SRC, DST);
    const lowOffset = base.slice();
    lowOffset[12] = 4 << 4;
    expect(parse(lowOffset)).toMatchObject({ reason: 'bad-header-length' });
    const longOffset = base.slice();
    longOffset[12] = 6 << 4;
    expect(parse(longOffset)).toMatchObject({ reason: 'truncated' });
    expect(parseTcpOptions(Uint8Array.of(2, 0, 0, 0))).toMatchObject({ reason: 'bad-option' });
    expect(parseTcpOptions(Uint8Array.of(2, 1, 0, 0))).toMatchObject({ reason: 'bad-option' });
    expect(parseTcpOptions(Uint8Array.of(1, 1, 8, 10, 0, 0))).toMatchObject({ reason: 'bad-option' });
    expect(parseTcpOptions(Uint8Array.of(1, 1, 1, 3))).toMatchObject({ reason: 'bad-option' });
    const zeroPort = TcpRepr.toBytes({ sourcePort: 0, destinationPort: 2, sequence: 0, acknowledgment: 0, flags: 0, window: 0, payload: new Uint8Array(0) }, SRC, DST);
    expect(parse(zeroPort)).toMatchObject({ reason: 'bad-port' });
  });

  it('skips unknown options by length, stops at EOL, ignores known options with a wrong length, clamps window scale to 14', () => {
    expect(parseTcpOptions(Uint8Array.of(30, 4, 9, 9, 2, 4, 0x05, 0xb4, 0, 99, 99))).toEqual({ maxSegmentSize: 1460 });
    expect(parseTcpOptions(Uint8Array.of(2, 5, 1, 2, 3, 3, 3, 15))).toEqual({ windowScale: 14 });
    expect(parseTcpOptions(Uint8Array.of(5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 4, 2))).toEqual({ sackBlocks: [{ left: 1, right: 2 }], sackPermitted: true });
  });

  it("lays out a SYN's options as Linux does: MSS, SACK-permitted+timestamps, NOP+window scale", () => {
    const bytes = TcpRepr.toBytes(
      { sourcePort: 1, destinationPort: 2, sequence: 1, acknowledgment: 0, flags: TcpFlag.SYN, window: 64240, maxSegmentSize: 1460, sackPermitted: true, timestamp: { value: 0x01020304, echo: 0 }, windowScale: 7, payload: new Uint8Array(0) },
      SRC,
      DST,
    );
    expect(bytes.length).toBe(40);
    expect([...bytes.subarray(20)]).toEqual([2, 4, 5, 180, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7]);
  });

  it('verifies the checksum over the pseudo-header: the same bytes from another source fail', () => {
    const bytes = TcpRepr.toBytes({ sourcePort: 1, destinationPort: 2, sequence: 1, acknowledgment: 0, flags: TcpFlag.SYN, window: 1, payload: Uint8Array.of(1, 2, 3) }, SRC, DST);
    const p = TcpPacket.check(bytes) as TcpPacket;
    expect(p.verifyChecksum(SRC, DST)).toBe(true);
    expect(p.verifyChecksum(parseIpv4('10.0.0.3'), DST)).toBe(false);
  });
});
