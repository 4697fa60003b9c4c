import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  frameLength,
  classifyHeader,
  isPlausibleHeader,
  packetSpan,
  parseRxHeader,
  receivedOk,
  releasePointer,
  ringAdvance,
  ringDistance,
} from '../../src/drivers/enc28j60/rx-ring.js';

// The receive ring of DS39662E §7.2: from ERXST = 0 (errata #5) to ERXND, odd (errata #14). The
// driver's default ring ends at 0x13FF (5 KB); the chip stores frames of up to MAMXFL = 1518.
const ERXND = 0x13ff;
const MAMXFL = 1518;
const evenPointer = fc.integer({ min: 0, max: ERXND >> 1 }).map((n) => n * 2);

describe('ENC28J60 receive ring: the packet header (DS-ENC §7.2.2, Table 7-3)', () => {
  it('reads the next packet pointer, byte count and status little-endian', () => {
    const header = parseRxHeader(Uint8Array.of(0x40, 0x05, 0x4a, 0x00, 0x80, 0x03));
    expect(header).toEqual({ next: 0x0540, byteCount: 74, status: 0x0380 });
  });

  it('reads a header anywhere in a longer read', () => {
    const bytes = Uint8Array.of(0xaa, 0xbb, 0x48, 0x00, 0x41, 0x00, 0x80, 0x00);
    expect(parseRxHeader(bytes, 2)).toEqual({ next: 0x0048, byteCount: 65, status: 0x0080 });
  });

  it('counts the FCS in the byte count: the frame is 4 bytes shorter', () => {
    expect(frameLength({ next: 0, byteCount: 64, status: 0 })).toBe(60);
    expect(frameLength({ next: 0, byteCount: 1518, status: 0 })).toBe(1514);
  });

  it('takes RSV bit 23 (status bit 7) as "received OK", and nothing else', () => {
    expect(receivedOk({ next: 0, byteCount: 64, status: 0x0080 })).toBe(true);
    // Broadcast (bit 25) alone, CRC error (bit 20) alone: not OK.
    expect(receivedOk({ next: 0, byteCount: 64, status: 0x0200 })).toBe(false);
    expect(receivedOk({ next: 0, byteCount: 64, status: 0x0010 })).toBe(false);
  });
});

describe('ENC28J60 receive ring: where packets lie (DS-ENC p.43)', () => {
  it('spans header, frame, FCS, and a pad byte after an odd count', () => {
    expect(packetSpan(64)).toBe(6 + 64);
    expect(packetSpan(65)).toBe(6 + 65 + 1);
  });

  it('so every packet after an even start starts even', () => {
    fc.assert(
      fc.property(evenPointer, fc.integer({ min: 18, max: MAMXFL }), (start, byteCount) => {
        expect(ringAdvance(start, packetSpan(byteCount), ERXND) & 1).toBe(0);
      }),
    );
  });

  it('wraps from ERXND to the start of the ring', () => {
    expect(ringAdvance(0x0100, 0x40, ERXND)).toBe(0x0140);
    expect(ringAdvance(0x13f0, 0x10, ERXND)).toBe(0x0000);
    expect(ringAdvance(0x13f0, 0x20, ERXND)).toBe(0x0010);
  });

  it('measures distances across the end of the ring', () => {
    expect(ringDistance(0x0100, 0x0140, ERXND)).toBe(0x40);
    expect(ringDistance(0x13f0, 0x0010, ERXND)).toBe(0x20);
    expect(ringDistance(0x0200, 0x0200, ERXND)).toBe(0);
  });

  it('advance and distance agree everywhere in the ring', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: ERXND }), fc.integer({ min: 0, max: ERXND }), (pointer, bytes) => {
        const moved = ringAdvance(pointer, bytes, ERXND);
        expect(moved).toBeGreaterThanOrEqual(0);
        expect(moved).toBeLessThanOrEqual(ERXND);
        expect(ringDistance(pointer, moved, ERXND)).toBe(bytes);
      }),
    );
  });
});

describe('ENC28J60 receive ring: freeing space (DS-ENC §7.2.4, errata #14)', () => {
  it('puts ERXRDPT on the byte just behind the next packet', () => {
    expect(releasePointer(0x0540, ERXND)).toBe(0x053f);
  });

  it('puts it on ERXND when the next packet is at the start of the ring', () => {
    expect(releasePointer(0x0000, ERXND)).toBe(ERXND);
  });

  it('never writes an even ERXRDPT, and frees everything before the next packet', () => {
    fc.assert(
      fc.property(evenPointer, (next) => {
        const erxrdpt = releasePointer(next, ERXND);
        expect(erxrdpt & 1).toBe(1);
        expect(erxrdpt).toBeLessThanOrEqual(ERXND);
        expect(ringAdvance(erxrdpt, 1, ERXND)).toBe(next);
      }),
    );
  });
});

describe('ENC28J60 receive ring: checking a header before trusting it', () => {
  const at = (start: number, byteCount: number) => ({ next: ringAdvance(start, packetSpan(byteCount), ERXND), byteCount, status: 0x0080 });

  it('accepts a packet one span on, also across the end of the ring', () => {
    expect(isPlausibleHeader(at(0x0000, 64), 0x0000, ERXND, MAMXFL)).toBe(true);
    const wrapping = at(0x13c0, 100);
    expect(wrapping.next).toBe(0x002a);
    expect(isPlausibleHeader(wrapping, 0x13c0, ERXND, MAMXFL)).toBe(true);
  });

  it('accepts the smallest and the largest frames', () => {
    expect(isPlausibleHeader(at(0x0100, 18), 0x0100, ERXND, MAMXFL)).toBe(true);
    expect(isPlausibleHeader(at(0x0100, MAMXFL), 0x0100, ERXND, MAMXFL)).toBe(true);
  });

  it('rejects a next packet pointer that is not one span on, or past ERXND', () => {
    const header = at(0x0100, 64);
    expect(isPlausibleHeader({ ...header, next: header.next + 2 }, 0x0100, ERXND, MAMXFL)).toBe(false);
    expect(isPlausibleHeader({ ...header, next: 0x1500 }, 0x0100, ERXND, MAMXFL)).toBe(false);
  });

  it('rejects byte counts below an Ethernet header and FCS, or above MAMXFL', () => {
    expect(isPlausibleHeader(at(0x0100, 17), 0x0100, ERXND, MAMXFL)).toBe(false);
    expect(isPlausibleHeader(at(0x0100, MAMXFL + 1), 0x0100, ERXND, MAMXFL)).toBe(false);
  });

  it('rejects a start that is odd or outside the ring', () => {
    expect(isPlausibleHeader(at(0x0101, 64), 0x0101, ERXND, MAMXFL)).toBe(false);
    expect(isPlausibleHeader({ next: 0x0046, byteCount: 64, status: 0x80 }, 0x1400, ERXND, MAMXFL)).toBe(false);
  });
  it('tells a stored frame over MAMXFL (MACON3.HFRMEN, DS-ENC Register 6-2) from corruption: the next packet pointer where its count puts it, RSV bit 31 zero (Table 7-3)', () => {
    expect(classifyHeader(at(0x0100, 64), 0x0100, ERXND, MAMXFL)).toBe('packet');
    expect(classifyHeader(at(0x0100, 1604), 0x0100, ERXND, MAMXFL)).toBe('too-long');
    expect(classifyHeader(at(0x1300, 3004), 0x1300, ERXND, MAMXFL)).toBe('too-long');
    const long = at(0x0100, 1604);
    expect(classifyHeader({ ...long, next: long.next + 2 }, 0x0100, ERXND, MAMXFL)).toBe('corrupt');
    expect(classifyHeader({ ...long, next: long.next + 1 }, 0x0100, ERXND, MAMXFL)).toBe('corrupt');
    expect(classifyHeader({ ...long, status: 0x8080 }, 0x0100, ERXND, MAMXFL)).toBe('corrupt');
    // No packet can be longer than the ring that holds it; 9004 is not even a count the next pointer can express.
    expect(classifyHeader(at(0x0100, ERXND - 5), 0x0100, ERXND, MAMXFL)).toBe('corrupt');
    expect(classifyHeader({ next: 0x0100, byteCount: 9004, status: 0x80 }, 0x0100, ERXND, MAMXFL)).toBe('corrupt');
  });
});
