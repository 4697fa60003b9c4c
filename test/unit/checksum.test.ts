import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { internetChecksum, pseudoHeaderSum, sum16, updateChecksum } from '../../src/wire/checksum.js';

describe('internet checksum (RFC 1071)', () => {
  it('matches the RFC 1071 §3 worked example', () => {
    // Bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (one's complement), checksum 220d.
    const bytes = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(sum16(bytes)).toBe(0xddf2);
    expect(internetChecksum(bytes)).toBe(0x220d);
  });

  it('verifies a real IPv4 header (sum over header with checksum is 0xffff)', () => {
    const header = Uint8Array.from([0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]);
    expect(sum16(header)).toBe(0xffff);
    header[10] = 0;
    header[11] = 0;
    expect(internetChecksum(header)).toBe(0xb861);
  });

  it('pads an odd trailing byte with zero', () => {
    expect(sum16(Uint8Array.of(0x12, 0x34, 0x56))).toBe(0x1234 + 0x5600);
  });

  it('incremental update equals recomputation for any 16-bit field change', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 64 }), fc.nat(), fc.integer({ min: 0, max: 0xffff }), (data, pos, newWord) => {
        const bytes = data.length % 2 ? Uint8Array.from([...data, 0]) : Uint8Array.from(data);
        const at = (pos % (bytes.length / 2)) * 2;
        const oldWord = (bytes[at]! << 8) | bytes[at + 1]!;
        const before = internetChecksum(bytes);
        bytes[at] = newWord >> 8;
        bytes[at + 1] = newWord & 0xff;
        const after = internetChecksum(bytes);
        const incremental = updateChecksum(before, oldWord, newWord);
        // RFC 1624: both zero representations are equivalent in one's complement.
        expect(incremental === after || (incremental ^ after) === 0xffff).toBe(true);
      }),
    );
  });

  it('folds the pseudo-header', () => {
    expect(pseudoHeaderSum(0xc0000201, 0xc0000202, 17, 8)).toBe(sum16(Uint8Array.of(0xc0, 0, 2, 1, 0xc0, 0, 2, 2, 0, 17, 0, 8)));
  });
});
