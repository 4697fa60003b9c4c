import { describe, expect, it } from 'vitest';
import { SeededRandom, randomBelow } from '../../src/time/random.js';
import {
  BoardFrame,
  FrameDecoder,
  crc16,
  encodeBoardFrame,
  encodeFrame,
  encodeHostData,
  encodeSpiCommand,
  parseBoardFrame,
  parseHostFrame,
  HOST_FRAME_OVERHEAD,
  MAX_PAYLOAD,
} from '../../hal/bridge/protocol.js';

function decodeAll(wire: Uint8Array): { frames: Uint8Array[]; drops: string[] } {
  const frames: Uint8Array[] = [];
  const drops: string[] = [];
  new FrameDecoder((body) => frames.push(body), (reason) => drops.push(reason)).push(wire);
  return { frames, drops };
}

describe('bridge framing', () => {
  it('uses CRC-16/MCRF4XX (check value 0x6F91), leaving a zero residue when appended', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc16(check)).toBe(0x6f91);
    const withCrc = Uint8Array.of(...check, 0x91, 0x6f);
    expect(crc16(withCrc)).toBe(0);
  });

  it('COBS-encodes with one code byte and a delimiter: constant overhead, no zero inside', () => {
    const zeros = new Uint8Array(MAX_PAYLOAD);
    const wire = encodeHostData(7, zeros);
    expect(wire.length).toBe(MAX_PAYLOAD + HOST_FRAME_OVERHEAD);
    expect(wire.subarray(0, -1).includes(0)).toBe(false);
    expect(wire.at(-1)).toBe(0);
    const { frames } = decodeAll(wire);
    expect(parseHostFrame(frames[0]!)).toMatchObject({ type: 1, seq: 7, payload: zeros });
    expect(encodeFrame(Uint8Array.of(0))).toEqual(Uint8Array.of(1, 1, 0));
  });

  it('round-trips board frames with the INT level in the type byte', () => {
    const wire = encodeBoardFrame(BoardFrame.DATA, { intAsserted: true, id: 9, ack: 200, consumed: 0xbeef }, Uint8Array.of(0, 1, 2));
    const view = parseBoardFrame(decodeAll(wire).frames[0]!)!;
    expect(view).toMatchObject({ type: BoardFrame.DATA, intAsserted: true, id: 9, ack: 200, consumed: 0xbeef });
    expect([...view.payload]).toEqual([0, 1, 2]);
  });

  it('given garbage and corrupted bytes between frames, it drops the damaged frames and resynchronises on the next delimiter', () => {
    const random = new SeededRandom(1234);
    for (let round = 0; round < 300; round++) {
      const payloads: Uint8Array[] = [];
      const wire: number[] = [];
      const damaged = new Set<number>();
      const count = 1 + randomBelow(random, 6);
      for (let i = 0; i < count; i++) {
        const payload = Uint8Array.from({ length: 1 + randomBelow(random, MAX_PAYLOAD) }, () => randomBelow(random, 4) === 0 ? 0 : randomBelow(random, 256));
        payloads.push(payload);
        const frame = [...encodeHostData(i, payload)];
        if (randomBelow(random, 3) === 0) {
          // Flip a bit somewhere before the delimiter, or prepend garbage without zeros.
          if (randomBelow(random, 2) === 0) {
            const at = randomBelow(random, frame.length - 1);
            frame[at] ^= 1 << randomBelow(random, 8);
            damaged.add(i);
          } else {
            wire.push(...Array.from({ length: 1 + randomBelow(random, 20) }, () => 1 + randomBelow(random, 255)), 0);
          }
        }
        wire.push(...frame);
      }
      const { frames } = decodeAll(Uint8Array.from(wire));
      const seqs = frames.map((f) => parseHostFrame(f)!).filter((f) => f.type === 1 && f.seq < count && f.payload.length === payloads[f.seq]!.length && f.payload.every((b, k) => b === payloads[f.seq]![k]));
      // Every undamaged frame arrives intact; a damaged one never arrives as if it were good.
      const good = seqs.map((f) => f.seq);
      for (let i = 0; i < count; i++) if (!damaged.has(i)) expect(good).toContain(i);
      for (const seq of good) expect(damaged.has(seq)).toBe(false);
      expect(frames.length).toBeLessThanOrEqual(count);
    }
  });

  it('encodes an SPI batch as id, then flags/wlen/rlen per transaction with LAST on the final one', () => {
    const bytes = encodeSpiCommand(5, [{ write: Uint8Array.of(0x3a), read: 2, keepSelected: true }, { write: Uint8Array.of(1, 2), duplex: true }]);
    expect([...bytes]).toEqual([0x10, 5, 0x01, 1, 0, 2, 0, 0x3a, 0x82, 2, 0, 0, 0, 1, 2]);
  });
});
