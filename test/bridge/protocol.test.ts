import { describe, expect, it } from 'vitest';
import { SeededRandom, randomBelow } from '../../src/time/random.js';
import {
  ArmOption,
  BoardFrame,
  ENDED_CRC_RESIDUE,
  Status,
  encodeDone,
  type BoardFrameView,
  Capability,
  Command,
  FrameDecoder,
  crc16,
  computedReadLength,
  decodeTransactionHeader,
  transactionHeaderRest,
  encodeArm,
  encodeBoardFrame,
  encodeFrame,
  encodeHello,
  encodeHostData,
  encodeSetFill,
  encodeSpiCommand,
  parseBoardFrame,
  parseHello,
  parseHostFrame,
  transactionsLength,
  HOST_FRAME_OVERHEAD,
  MAX_PAYLOAD,
  TransactionFlag,
  type Hello,
  type WireTransaction,
} from '../../hal/bridge/protocol.js';

/**
 * The transactions in `bytes` as the board model's parser reads them, or undefined unless they
 * end with LAST exactly at the end.
 */
function decodeTransactions(bytes: Uint8Array, version: number): WireTransaction[] | undefined {
  const out: WireTransaction[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = 1 + transactionHeaderRest(bytes[at]!, version);
    const header = decodeTransactionHeader(bytes.subarray(at, at + size), version);
    at += size;
    const write = bytes.slice(at, at + header.writeLength);
    at += header.writeLength;
    out.push({
      ...(write.length > 0 ? { write } : {}),
      ...(header.readLength > 0 ? { read: header.readLength } : {}),
      ...(header.flags & TransactionFlag.DUPLEX ? { duplex: true } : {}),
      ...(header.flags & TransactionFlag.KEEP_CS ? { keepSelected: true } : {}),
      ...(header.ifNonZero !== undefined ? { ifNonZero: header.ifNonZero } : {}),
      ...(header.readLengthFrom ? { readLengthFrom: header.readLengthFrom } : {}),
      ...(header.delayUs !== undefined ? { delayUs: header.delayUs } : {}),
    });
    if (header.flags & TransactionFlag.LAST) return at === bytes.length ? out : undefined;
  }
  return undefined;
}

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

  it('reads an ended DATA frame (CRC complemented, residue 0xF0B8) as its DATA and DONE, only where asked; drops one that is short, not DATA, or damaged', () => {
    expect(ENDED_CRC_RESIDUE).toBe(0xf0b8);
    const fields = { intAsserted: true, id: 9, ack: 4, consumed: 0x1234 };
    const wire = encodeBoardFrame(BoardFrame.DATA, fields, Uint8Array.of(1, 2, 3, ...encodeDone({ status: Status.OK, value: 3 })), true);
    const frames: BoardFrameView[] = [];
    const drops: string[] = [];
    const decoder = new FrameDecoder((body) => frames.push(parseBoardFrame(body)!), (reason) => drops.push(reason), undefined, { endedFrames: true });
    decoder.push(wire);
    expect(frames.map((f) => ({ type: f.type, int: f.intAsserted, id: f.id, ack: f.ack, consumed: f.consumed, payload: [...f.payload] }))).toEqual([
      { type: BoardFrame.DATA, int: true, id: 9, ack: 4, consumed: 0x1234, payload: [1, 2, 3] },
      { type: BoardFrame.DONE, int: true, id: 9, ack: 4, consumed: 0x1234, payload: [Status.OK, 3, 0] },
    ]);
    expect(decodeAll(wire).drops).toEqual(['crc']); // a host that did not ask
    frames.length = 0;
    decoder.push(encodeBoardFrame(BoardFrame.DATA, fields, Uint8Array.of(0, 3, 0), true)); // no data byte
    decoder.push(encodeBoardFrame(BoardFrame.EVENT, fields, Uint8Array.of(1, 2, 3, 4), true));
    const damaged = Uint8Array.from(wire);
    damaged[4] ^= 0x10;
    decoder.push(damaged);
    expect(frames).toEqual([]);
    expect(drops).toEqual(['too-short', 'too-short', 'crc']);
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

  it('skips idle fill: zeros between frames are neither frames nor damaged ones', () => {
    const frame = (id: number) => [...encodeBoardFrame(BoardFrame.DONE, { intAsserted: false, id, ack: 1, consumed: 2 }, Uint8Array.of(0, 0, 0))];
    const { frames, drops } = decodeAll(Uint8Array.from([...frame(1), ...new Array<number>(97).fill(0), ...frame(2), 0, 0]));
    expect(frames.map((f) => parseBoardFrame(f)!.id)).toEqual([1, 2]);
    expect(drops).toEqual([]);
  });

  it('encodes SET_FILL as id and a count of 0 to 255', () => {
    expect([...encodeSetFill(3, 97)]).toEqual([Command.SET_FILL, 3, 97]);
    expect(() => encodeSetFill(3, 256)).toThrow(RangeError);
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

  it('encodes a SHORT header as flags and one length byte (wlen low nibble, rlen high) when both fit in 4 bits', () => {
    const batch: WireTransaction[] = [{ write: Uint8Array.of(0x1f), read: 2 }, { write: Uint8Array.of(0x3a), read: 16 }];
    const bytes = encodeSpiCommand(7, batch, { shortHeaders: true });
    // The second reads 16 bytes: too many for a nibble, so it keeps the 5-byte header.
    expect([...bytes]).toEqual([0x10, 7, TransactionFlag.SHORT, 0x21, 0x1f, 0x80, 1, 0, 16, 0, 0x3a]);
    expect(transactionsLength(batch, { shortHeaders: true })).toBe(bytes.length - 2);
    expect(transactionsLength(batch)).toBe(encodeSpiCommand(7, batch).length - 2);
  });

  it('round-trips SHORT, IF and LENGTH transactions through the board model\'s parser', () => {
    const batch: WireTransaction[] = [
      { write: Uint8Array.of(0x00), read: 1 },
      { write: Uint8Array.of(0x9f, 0x01), duplex: true, keepSelected: true },
      { write: Uint8Array.of(0x04), read: 3, ifNonZero: 0 },
      { write: Uint8Array.of(0x3a), read: 6, keepSelected: true, ifNonZero: 2 },
      { read: 1520, readLengthFrom: { at: 6, even: true } },
      { read: 9, readLengthFrom: { at: 1, bigEndian: true, minus: 63 }, ifNonZero: 63 },
      { write: Uint8Array.of(0xbf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f) },
    ];
    for (const shortHeaders of [false, true]) {
      const bytes = encodeSpiCommand(0x42, batch, { shortHeaders });
      expect([...bytes.subarray(0, 2)]).toEqual([Command.SPI, 0x42]);
      expect(decodeTransactions(bytes.subarray(2), 2)).toEqual(batch);
    }
    // IF's operand follows the lengths; LENGTH's (at, opts) follow IF's; opts = minus << 2 | even << 1 | big-endian.
    const header = encodeSpiCommand(1, [{ read: 9, readLengthFrom: { at: 1, bigEndian: true, minus: 5, even: true }, ifNonZero: 3 }], { shortHeaders: true });
    expect([...header.subarray(2)]).toEqual([TransactionFlag.SHORT | TransactionFlag.IF | TransactionFlag.LENGTH | TransactionFlag.LAST, 0x90, 3, 1, (5 << 2) | 2 | 1]);
    expect(decodeTransactionHeader(header.subarray(2), 2)).toEqual({
      flags: header[2], writeLength: 0, readLength: 9, ifNonZero: 3, readLengthFrom: { at: 1, bigEndian: true, minus: 5, even: true },
    });
  });

  it('puts DELAY\'s us:u16 after the LENGTH operands, little-endian, and the board model reads it back, SHORT or not', () => {
    const batch: WireTransaction[] = [
      { write: Uint8Array.of(0x1f), read: 2, keepSelected: true },
      { write: Uint8Array.of(0x7a, 0x01), delayUs: 1 },
      { read: 300, readLengthFrom: { at: 0, even: true }, ifNonZero: 1, delayUs: 65_535 },
      { write: Uint8Array.of(0x3a), read: 1, delayUs: 0x1234 },
    ];
    for (const shortHeaders of [false, true]) {
      const bytes = encodeSpiCommand(3, batch, { shortHeaders });
      expect(bytes.length - 2).toBe(transactionsLength(batch, { shortHeaders }));
      expect(decodeTransactions(bytes.subarray(2), 2)).toEqual(batch);
    }
    const header = encodeSpiCommand(1, [{ read: 9, readLengthFrom: { at: 1 }, ifNonZero: 3, delayUs: 0x1234 }], { shortHeaders: true });
    expect([...header.subarray(2)]).toEqual([TransactionFlag.SHORT | TransactionFlag.IF | TransactionFlag.LENGTH | TransactionFlag.DELAY | TransactionFlag.LAST, 0x90, 3, 1, 0, 0x34, 0x12]);
    // A board before caps bit 11 reads bit 5 as reserved: no operand.
    expect(transactionHeaderRest(TransactionFlag.DELAY, 2, false)).toBe(4);
    expect(Capability.DELAYS).toBe(1 << 11);
  });

  it('with pairs, sends each run of two-byte write-only transactions as one SHORT PAIRS transaction of up to seven pairs', () => {
    const pair = (a: number, b: number, more: Partial<WireTransaction> = {}): WireTransaction => ({ write: Uint8Array.of(a, b), ...more });
    const pairs = Array.from({ length: 9 }, (_, i) => pair(0x40 + i, i));
    const batch: WireTransaction[] = [{ write: Uint8Array.of(0x1c), read: 1 }, ...pairs, { write: Uint8Array.of(0x7a, 0), keepSelected: true }, { write: Uint8Array.of(1, 2, 3) }];
    const options = { shortHeaders: true, pairs: true };
    const bytes = encodeSpiCommand(5, batch, options);
    const S = TransactionFlag.SHORT;
    expect([...bytes]).toEqual([
      0x10, 5,
      S, 0x11, 0x1c,
      // seven pairs, then the last two
      S | TransactionFlag.PAIRS, 14, ...pairs.slice(0, 7).flatMap((t) => [...t.write!]),
      S | TransactionFlag.PAIRS, 4, ...pairs.slice(7).flatMap((t) => [...t.write!]),
      // KEEP_CS: not a pair (the next transaction continues its CS frame)
      S | TransactionFlag.KEEP_CS, 2, 0x7a, 0,
      S | TransactionFlag.LAST, 3, 1, 2, 3,
    ]);
    expect(transactionsLength(batch, options)).toBe(bytes.length - 2);
    // A lone pair, reads, DUPLEX, LENGTH break runs; IF and DELAY may lead one, not join it.
    const mixed: WireTransaction[] = [pair(1, 2), { write: Uint8Array.of(3), read: 1 }, pair(4, 5, { ifNonZero: 0 }), pair(6, 7), pair(8, 9, { delayUs: 10 }), pair(10, 11, { duplex: true })];
    expect([...encodeSpiCommand(6, mixed, options).subarray(2)]).toEqual([
      S, 2, 1, 2,
      S, 0x11, 3,
      S | TransactionFlag.PAIRS | TransactionFlag.IF, 4, 0, 4, 5, 6, 7,
      S | TransactionFlag.DELAY, 2, 10, 0, 8, 9,
      S | TransactionFlag.DUPLEX | TransactionFlag.LAST, 2, 10, 11,
    ]);
    // Without the board's caps (or without SHORT headers) nothing is merged.
    expect([...encodeSpiCommand(5, pairs)]).toEqual([...encodeSpiCommand(5, pairs, { pairs: true })]);
    expect(encodeSpiCommand(5, pairs, { shortHeaders: true }).length).toBe(2 + 9 * 4);
    expect(Capability.PAIRS).toBe(1 << 12);
  });

  it('sends no DELAY for a delay of 0, and refuses one the header cannot carry (1 to 65535 µs, whole)', () => {
    const plain = encodeSpiCommand(1, [{ write: Uint8Array.of(1) }]);
    expect([...encodeSpiCommand(1, [{ write: Uint8Array.of(1), delayUs: 0 }])]).toEqual([...plain]);
    for (const delayUs of [-1, 0.5, 65_536, Number.NaN]) {
      expect(() => encodeSpiCommand(1, [{ write: Uint8Array.of(1), delayUs }])).toThrow(RangeError);
      expect(() => transactionsLength([{ write: Uint8Array.of(1), delayUs }])).toThrow(RangeError);
    }
  });

  it('refuses IF and LENGTH references beyond the first 64 read bytes, and LENGTH minus beyond 63', () => {
    expect(() => encodeSpiCommand(1, [{ read: 1, ifNonZero: 64 }])).toThrow(RangeError);
    expect(() => encodeSpiCommand(1, [{ read: 1, readLengthFrom: { at: 63 } }])).toThrow(RangeError);
    expect(() => encodeSpiCommand(1, [{ read: 1, readLengthFrom: { at: 0, minus: 64 } }])).toThrow(RangeError);
  });

  it('a version-1 board reads every header as flags, wlen:u16, rlen:u16, whatever the new flag bits say', () => {
    const bytes = encodeSpiCommand(1, [{ write: Uint8Array.of(0x03, 0x00), read: 2 }]);
    expect(decodeTransactions(bytes.subarray(2), 1)).toEqual([{ write: Uint8Array.of(0x03, 0x00), read: 2 }]);
    expect(decodeTransactionHeader(Uint8Array.of(TransactionFlag.SHORT | TransactionFlag.IF | TransactionFlag.LAST, 1, 0, 2, 0), 1)).toMatchObject({ writeLength: 1, readLength: 2 });
  });

  it('encodes ARM as id, options (QUIET), length and the program, which the board parses back', () => {
    const program: WireTransaction[] = [
      { write: Uint8Array.of(0x1c), read: 1 },
      { write: Uint8Array.of(0x03, 0x00), read: 2, ifNonZero: 0, keepSelected: true },
      { read: 40, readLengthFrom: { at: 1, minus: 2 } },
    ];
    const bytes = encodeArm(9, program, { quiet: true }, { shortHeaders: true });
    const length = transactionsLength(program, { shortHeaders: true });
    expect([...bytes.subarray(0, 4)]).toEqual([Command.ARM, 9, ArmOption.QUIET, length]);
    expect(bytes.length).toBe(4 + length);
    expect(decodeTransactions(bytes.subarray(4), 2)).toEqual(program);
    expect(encodeArm(9, program, {})[2]).toBe(0);
  });

  it('computes a LENGTH read count: little- or big-endian, minus floored at 0, rounded up to even, capped; undefined when not read', () => {
    const reads = Uint8Array.of(0x00, 0x34, 0x02, 0x05);
    expect(computedReadLength({ at: 1 }, reads, 1000)).toBe(0x0234);
    expect(computedReadLength({ at: 1, bigEndian: true }, reads, 0xffff)).toBe(0x3402);
    expect(computedReadLength({ at: 1, minus: 3, even: true }, reads, 1000)).toBe(0x0232);
    expect(computedReadLength({ at: 1, minus: 4, even: true }, reads, 1000)).toBe(0x0230);
    expect(computedReadLength({ at: 2, minus: 63 }, reads, 0xffff)).toBe(0x0502 - 63);
    expect(computedReadLength({ at: 0, minus: 1 }, reads, 0xffff)).toBe(0x3400 - 1);
    expect(computedReadLength({ at: 0, minus: 1 }, Uint8Array.of(0, 0), 1000)).toBe(0);
    expect(computedReadLength({ at: 1 }, reads, 100)).toBe(100);
    expect(computedReadLength({ at: 3 }, reads, 100)).toBeUndefined();
    // Past 64 read bytes the board no longer holds the first ones.
    expect(computedReadLength({ at: 0 }, new Uint8Array(64).fill(1), 1000)).toBe(0x0101);
    expect(computedReadLength({ at: 0 }, new Uint8Array(65).fill(1), 1000)).toBeUndefined();
  });
});

describe('bridge HELLO', () => {
  const fields: Omit<Hello, 'version' | 'capabilities' | 'programBytes'> = {
    window: 992, maxPayload: 64, sessions: 3, resetCause: 2, pinCount: 20, csPin: 10, intPin: 2, resetPin: 9, analogCount: 6, a0Pin: 14, name: 'uno',
  };

  it('parses a version-1 HELLO: 14 fixed bytes, then the name; no programs', () => {
    const payload = Uint8Array.of(1, 0xff, 0x00, 0xe0, 0x03, 64, 3, 2, 20, 10, 2, 9, 6, 14, ...new TextEncoder().encode('uno'));
    expect(parseHello(payload)).toEqual({ ...fields, version: 1, capabilities: 0xff, programBytes: 0 });
    expect(encodeHello({ ...fields, version: 1, capabilities: 0xff, programBytes: 0 })).toEqual(payload);
  });

  it('parses a version-2 HELLO: programBytes after a0Pin, caps bits 8 (programs) and 9 (short headers)', () => {
    const payload = Uint8Array.of(2, 0xff, 0x03, 0xe0, 0x03, 64, 3, 2, 20, 10, 2, 9, 6, 14, 64, ...new TextEncoder().encode('uno'));
    const hello = parseHello(payload)!;
    expect(hello).toEqual({ ...fields, version: 2, capabilities: 0x3ff, programBytes: 64 });
    expect(hello.capabilities & Capability.PROGRAMS).toBeTruthy();
    expect(hello.capabilities & Capability.SHORT_HEADERS).toBeTruthy();
    expect(encodeHello(hello)).toEqual(payload);
    expect(parseHello(payload.subarray(0, 14))).toBeUndefined();
  });
});
