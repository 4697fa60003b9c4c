/**
 * The TypeScript board model against docs/bridge-protocol.md version 2, frame by frame: the host
 * side is hand-made frames, so the board's answers can be checked byte for byte — including the
 * cases the host HAL never sends (references to bytes not read, oversized programs).
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import {
  BoardFrame,
  Capability,
  Command,
  EventKind,
  FrameDecoder,
  MAX_PAYLOAD,
  NO_REQUEST_ID,
  Status,
  TransactionFlag,
  HostHelloOption,
  DATA_PAYLOAD,
  encodeArm,
  encodeCommand,
  encodeHostData,
  encodeHostHello,
  encodeSetFill,
  encodeSpiCommand,
  parseBoardFrame,
  parseDone,
  parseHello,
  type BoardFrameView,
  type WireTransaction,
} from '../../hal/bridge/protocol.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { ModelBoard } from '../../boards/sim/model-board.js';

/** One answer: the DATA bytes under an id, then its DONE. */
interface Answer {
  readonly id: number;
  readonly data: number[];
  readonly status: number;
  readonly value: number;
}

function harness(protocolVersion: 1 | 2 = 2, helloOptions = 0) {
  const clock = new VirtualClock();
  const chip = new SpiMemoryChip();
  const board = new ModelBoard({ clock, chip, protocolVersion });
  const frames: BoardFrameView[] = [];
  /** Every byte the board sent, since the harness's HELLO. */
  const wire: number[] = [];
  let intEvents = 0;
  const decoder = new FrameDecoder(
    (body) => {
      const frame = parseBoardFrame(body)!;
      if (frame.type === BoardFrame.EVENT && frame.payload[0] === EventKind.INT) intEvents++;
      frames.push(frame);
    },
    undefined,
    undefined,
    { endedFrames: true },
  );
  board.onData((bytes) => {
    wire.push(...bytes);
    decoder.push(bytes);
  });
  board.open();
  board.write(encodeHostHello(0, helloOptions));
  clock.advance(1);
  const hello = parseHello(frames.filter((f) => f.type === BoardFrame.HELLO).at(-1)!.payload)!;
  frames.length = 0;
  wire.length = 0;
  intEvents = 0;
  let seq = 0;
  return {
    clock,
    chip,
    board,
    hello,
    frames,
    wire,
    /** Send `commands` as one stream, cut into DATA frames, and let the board's loop run. */
    send(...commands: Uint8Array[]): void {
      const stream = Uint8Array.from(commands.flatMap((c) => [...c]));
      for (let at = 0; at < stream.length; at += MAX_PAYLOAD) board.write(encodeHostData(seq++, stream.subarray(at, at + MAX_PAYLOAD)));
      clock.advance(1);
    },
    /** The answers (DATA…DONE) sent since the last call, in order. */
    answers(): Answer[] {
      const out: Answer[] = [];
      let data: number[] = [];
      for (const frame of frames.splice(0)) {
        if (frame.type === BoardFrame.DATA) data.push(...frame.payload);
        if (frame.type === BoardFrame.DONE) {
          const done = parseDone(frame.payload)!;
          out.push({ id: frame.id, data, status: done.status, value: done.value });
          data = [];
        }
      }
      return out;
    },
    /** INT events sent so far. */
    events(): number {
      return intEvents;
    },
  };
}

const readAt = (address: number, n: number, extra: Partial<WireTransaction> = {}): WireTransaction => ({ write: Uint8Array.of(0x03, address), read: n, ...extra });
const writeAt = (address: number, ...data: number[]): WireTransaction => ({ write: Uint8Array.of(0x02, address, ...data) });
const spi = (id: number, batch: WireTransaction[]) => encodeSpiCommand(id, batch, { shortHeaders: true });

describe('board model, protocol version 2', () => {
  it('says HELLO version 2 with programBytes 64 and caps bits 8 (programs), 9 (short headers), 10 (idle fill), 11 (delays), 12 (pairs) and 13 (ended DATA frames) and 15 (program extensions)', () => {
    const { hello } = harness();
    expect(hello).toMatchObject({ version: 2, programBytes: 64 });
    expect(hello.capabilities).toBe(0xff | Capability.PROGRAMS | Capability.SHORT_HEADERS | Capability.IDLE_FILL | Capability.DELAYS | Capability.PAIRS | Capability.END_FRAMES | Capability.PROGRAM_EXT);
  });

  it('given PAIRS, clocks each two bytes in a CS frame of their own, as the same transactions unpaired; an IF that fails skips them all', () => {
    const h = harness();
    const commands = [Uint8Array.of(0x05, 1), Uint8Array.of(0x06, 2), Uint8Array.of(0x07, 3)];
    const batch: WireTransaction[] = [{ write: Uint8Array.of(0x03, 0), read: 1 }, ...commands.map((write) => ({ write }))];
    const paired = encodeSpiCommand(1, batch, { shortHeaders: true, pairs: true });
    expect(paired[6]! & TransactionFlag.PAIRS).toBe(TransactionFlag.PAIRS);
    h.chip.memory[0] = 1;
    h.send(paired);
    const pairedFrames = h.chip.csFrames.splice(0);
    h.send(spi(2, batch));
    expect(h.chip.csFrames.splice(0)).toEqual(pairedFrames);
    expect(pairedFrames).toEqual([[0x03, 0, 0], [0x05, 1], [0x06, 2], [0x07, 3]]);
    // IF on the read byte, now 0: the paired run is skipped whole, CS stays up.
    h.chip.memory[0] = 0;
    const skipped = [batch[0]!, ...commands.map((write, i) => ({ write, ...(i === 0 && { ifNonZero: 0 }) }))];
    h.send(encodeSpiCommand(3, skipped, { shortHeaders: true, pairs: true }));
    expect(h.chip.csFrames.splice(0)).toEqual([[0x03, 0, 0]]);
    expect(h.answers().map((a) => a.status)).toEqual([Status.OK, Status.OK, Status.OK]);
  });

  it('given HELLO option END_FRAMES, ends each answer with reads in its last DATA frame (CRC complemented); without reads, or without the option, a DONE frame', () => {
    /** Wire frames of one answer (delimiter-separated, idle fill left out). */
    const wireFrames = (wire: number[]) => wire.join(',').split(/(?:^|,)0(?=,|$)/).filter((f) => f !== '').length;
    for (const [reads, ended] of [[3, true], [112, true], [113, true], [0, false]] as const) {
      for (const option of [HostHelloOption.END_FRAMES, 0]) {
        const h = harness(2, option);
        h.chip.memory.set(Array.from({ length: 200 }, (_, i) => i + 1));
        const batch = reads > 0 ? [readAt(0, reads)] : [writeAt(0x40, 1)];
        h.send(spi(1, batch));
        const data = reads > 0 ? Array.from({ length: reads }, (_, i) => i + 1) : [];
        expect(h.answers()).toEqual([{ id: 1, data, status: Status.OK, value: reads }]);
        // DATA frames of ≤112, plus a DONE frame unless the last DATA frame carried it.
        const frames = Math.ceil(reads / DATA_PAYLOAD) + (ended && option ? 0 : 1);
        expect(wireFrames(h.wire)).toBe(frames);
        if (ended && option) {
          // A decoder that knows no ended frames drops the last as a CRC error.
          const drops: string[] = [];
          new FrameDecoder(() => {}, (reason) => drops.push(reason)).push(Uint8Array.from(h.wire));
          expect(drops).toEqual(['crc']);
        }
      }
    }
  });

  it('executes SHORT headers like long ones', () => {
    const h = harness();
    h.chip.memory.set([5, 6, 7], 0x10);
    h.send(spi(1, [readAt(0x10, 3)]), encodeSpiCommand(2, [readAt(0x10, 3)]));
    expect(h.answers()).toEqual([
      { id: 1, data: [5, 6, 7], status: Status.OK, value: 3 },
      { id: 2, data: [5, 6, 7], status: Status.OK, value: 3 },
    ]);
  });

  it('given IF on a zero byte, skips the rest of the batch: nothing clocked, CS released, DONE counts the bytes before', () => {
    const h = harness();
    h.chip.memory.set([0, 0xaa, 0xbb], 0);
    // The first transaction keeps CS for the second, which reads on.
    const batch = [readAt(0, 1, { keepSelected: true }), { read: 2, ifNonZero: 0 }, writeAt(0x20, 9)];
    h.send(spi(1, batch));
    expect(h.answers()).toEqual([{ id: 1, data: [0], status: Status.OK, value: 1 }]);
    expect(h.chip.selects).toBe(1);
    expect(h.chip.memory[0x20]).toBe(0);
    // The skipped bytes were consumed, and CS went up: the next command selects afresh and reads right.
    h.chip.memory[0] = 1;
    h.send(spi(2, batch));
    expect(h.answers()).toEqual([{ id: 2, data: [1, 0xaa, 0xbb], status: Status.OK, value: 3 }]);
    expect(h.chip.selects).toBe(3);
    expect(h.chip.memory[0x20]).toBe(9);
  });

  it('given LENGTH, reads the count from read bytes: minus, rounded up to even, capped at rlen', () => {
    const h = harness();
    h.chip.memory.set([7, 0], 0); // little-endian 7
    h.chip.memory.set([0, 9], 2); // big-endian 9
    h.chip.memory.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0x40);
    h.send(
      spi(1, [readAt(0, 2), readAt(0x40, 10, { readLengthFrom: { at: 0, minus: 2, even: true } })]),
      spi(2, [readAt(2, 2), readAt(0x40, 10, { readLengthFrom: { at: 0, bigEndian: true } })]),
      spi(3, [readAt(2, 2), readAt(0x40, 4, { readLengthFrom: { at: 0, bigEndian: true } })]),
    );
    expect(h.answers()).toEqual([
      { id: 1, data: [7, 0, 1, 2, 3, 4, 5, 6], status: Status.OK, value: 8 },
      { id: 2, data: [0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9], status: Status.OK, value: 11 },
      { id: 3, data: [0, 9, 1, 2, 3, 4], status: Status.OK, value: 6 },
    ]);
  });

  it('given a reference to a byte not read yet, or made after the batch read more than 64, IF fails, LENGTH reads 0, and DONE says EINVAL', () => {
    const h = harness();
    h.chip.memory.fill(1);
    h.send(
      spi(1, [readAt(0, 1), { ...readAt(0, 2), ifNonZero: 1 }]),
      spi(2, [readAt(0, 1), readAt(0, 5, { readLengthFrom: { at: 0 } }), readAt(0, 1)]),
      // After 64 bytes, byte 63 is still held; a raw operand of 64 refers to a byte not read.
      spi(3, [readAt(0, 64), { ...readAt(0, 1), ifNonZero: 63 }]),
      Uint8Array.of(Command.SPI, 4, 0x00, 2, 0, 64, 0, 0x03, 0x00, 0x80 | 0x04, 2, 0, 1, 0, 64, 0x03, 0x00),
      // The 65th byte was read over the first ones.
      spi(5, [readAt(0, 65), { ...readAt(0, 1), ifNonZero: 0 }]),
      spi(6, [readAt(0, 65), readAt(0, 9, { readLengthFrom: { at: 0 } })]),
    );
    expect(h.answers()).toEqual([
      { id: 1, data: [1], status: Status.EINVAL, value: 1 },
      { id: 2, data: [1, 1], status: Status.EINVAL, value: 2 },
      { id: 3, data: Array(65).fill(1), status: Status.OK, value: 65 },
      { id: 4, data: Array(64).fill(1), status: Status.EINVAL, value: 64 },
      { id: 5, data: Array(65).fill(1), status: Status.EINVAL, value: 65 },
      { id: 6, data: Array(65).fill(1), status: Status.EINVAL, value: 65 },
    ]);
  });

  it('given ARM, keeps the program and runs it at once under the ARM id; a program over 64 bytes is refused with EINVAL and disarms', () => {
    const h = harness();
    h.chip.memory.set([0, 4], 0);
    h.send(encodeArm(7, [readAt(0, 2), { ...readAt(0, 1), ifNonZero: 0 }], {}, { shortHeaders: true }));
    expect(h.answers()).toEqual([
      { id: 7, data: [], status: Status.OK, value: 9 },
      { id: 7, data: [0, 4], status: Status.OK, value: 2 },
    ]);
    expect(h.board.armed).toEqual({ id: 7, quiet: false, length: 9 });
    const big = Array.from({ length: 5 }, () => writeAt(0, ...Array(10).fill(0)));
    const arm = encodeArm(8, big, {}, { shortHeaders: true });
    expect(arm[3]).toBeGreaterThan(64);
    h.send(arm, encodeCommand(Command.PING, 9));
    expect(h.answers()).toEqual([
      { id: 8, data: [], status: Status.EINVAL, value: arm[3] },
      { id: 9, data: [], status: Status.OK, value: expect.any(Number) },
    ]);
    expect(h.board.armed).toBeUndefined();
  });

  it('runs the program again while runs are not cut short by IF, on an INT edge, after a command that ends with INT asserted, and on RUN', () => {
    const h = harness();
    // Byte 0 says "a packet waits"; the program takes it and clears the flag, like PKTDEC.
    const program = [readAt(0, 1), { ...readAt(1, 1), ifNonZero: 0 }, writeAt(0, 0)];
    h.send(encodeArm(1, program, {}, { shortHeaders: true }));
    expect(h.answers().map((a) => a.data)).toEqual([[], [0]]); // just armed; cut short
    h.chip.memory.set([1, 0x55], 0);
    h.send(encodeCommand(Command.PING, 2));
    expect(h.answers().map((a) => a.id)).toEqual([2]); // no trigger: no run
    h.chip.setInterrupt(true);
    h.clock.advance(1);
    // The edge ran it and it took the packet; not cut short, so it ran again and found none.
    expect(h.answers().map((a) => a.data)).toEqual([[1, 0x55], [0]]);
    h.chip.memory.set([1, 0x66], 0);
    h.send(spi(3, [readAt(0x30, 1)]));
    // INT still asserted after the command: run.
    expect(h.answers().map((a) => [a.id, a.data])).toEqual([[3, [0]], [1, [1, 0x66]], [1, [0]]]);
    h.chip.setInterrupt(false); // an edge too
    h.clock.advance(1);
    expect(h.answers().map((a) => a.data)).toEqual([[0]]);
    h.chip.memory.set([1, 0x77], 0);
    h.send(encodeCommand(Command.RUN, 4));
    expect(h.answers().map((a) => [a.id, a.data, a.value])).toEqual([[1, [1, 0x77], 2], [4, [], 1], [1, [0], 1]]);
    expect(h.board.runs).toBe(8);
  });

  it('given a program without LAST, a run ends at its end with EINVAL, CS released, and is not repeated at once', () => {
    const h = harness();
    // The last transaction keeps CS and has no LAST: the host's encoder never sends this.
    const bytes = encodeSpiCommand(0, [readAt(0, 1), readAt(0, 1)], { shortHeaders: true }).subarray(2);
    bytes[bytes.length - 4] = 0x10 | 0x01; // SHORT | KEEP_CS, no LAST
    h.send(Uint8Array.of(Command.ARM, 1, 0, bytes.length, ...bytes));
    expect(h.answers()).toEqual([
      { id: 1, data: [], status: Status.OK, value: bytes.length },
      { id: 1, data: [0, 0], status: Status.EINVAL, value: 2 },
    ]);
    h.send(spi(2, [readAt(0, 1)]));
    expect(h.answers()).toEqual([{ id: 2, data: [0], status: Status.OK, value: 1 }]);
    expect(h.chip.selects).toBe(3);
  });

  it('runs only between commands, never while a KEEP_CS transaction holds CS across requests', () => {
    const h = harness();
    const cutShort = [readAt(0, 1), { ...readAt(0, 1), ifNonZero: 0 }];
    h.send(encodeArm(1, cutShort, {}, { shortHeaders: true }), spi(2, [{ write: Uint8Array.of(0x55), keepSelected: true }]));
    // The ARM's answer and the SPI command's came first; the just-armed run waits for CS.
    expect(h.answers().map((a) => a.id)).toEqual([1, 2]);
    h.chip.setInterrupt(true);
    h.clock.advance(1);
    expect(h.board.runs).toBe(0);
    h.send(encodeCommand(Command.RUN, 3));
    expect(h.answers()).toEqual([{ id: 3, data: [], status: Status.OK, value: 0 }]);
    h.send(spi(4, [{ write: Uint8Array.of(0x55) }]));
    expect(h.answers().map((a) => a.id)).toEqual([4, 1]);
    expect(h.board.runs).toBe(1);
  });

  it('with QUIET sends no INT events while armed; DISARM stops the runs, and the events come back', () => {
    const h = harness();
    h.send(encodeArm(1, [readAt(0, 1)], { quiet: true }, { shortHeaders: true }));
    h.chip.setInterrupt(true);
    h.clock.advance(1);
    expect(h.events()).toBe(0);
    h.answers();
    h.send(encodeCommand(Command.DISARM, 2));
    expect(h.answers()).toEqual([{ id: 2, data: [], status: Status.OK, value: 0 }]);
    // What happened while quiet is not reported afterwards; the next change is.
    expect(h.events()).toBe(0);
    h.chip.setInterrupt(false);
    h.clock.advance(1);
    expect(h.events()).toBe(1);
    expect(h.answers()).toEqual([]);
    h.send(encodeCommand(Command.RUN, 3));
    expect(h.answers()).toEqual([{ id: 3, data: [], status: Status.OK, value: 0 }]);
  });

  it('given SET_FILL n, follows the frames of each loop pass with n zeros once it is idle; SET_FILL 0 and HELLO turn the fill off', () => {
    const h = harness();
    /** Zeros after the last frame's delimiter on the wire. */
    const trailingZeros = () => {
      let zeros = 0;
      while (zeros < h.wire.length && h.wire[h.wire.length - 1 - zeros] === 0) zeros++;
      return zeros - 1;
    };
    h.send(encodeSetFill(1, 40));
    expect(h.answers()).toEqual([{ id: 1, data: [], status: Status.OK, value: 40 }]);
    expect(trailingZeros()).toBe(40);
    // Two replies in one pass: the zeros come once, after both.
    h.wire.length = 0;
    h.send(encodeCommand(Command.PING, 2), encodeCommand(Command.PING, 3));
    expect(h.wire.filter((b) => b === 0).length).toBe(2 + 40);
    expect(trailingZeros()).toBe(40);
    h.send(encodeSetFill(4, 0));
    expect(trailingZeros()).toBe(0);
    h.send(encodeSetFill(5, 40));
    h.wire.length = 0;
    h.board.write(encodeHostHello(0x40));
    h.clock.advance(1);
    expect(h.frames.slice(-2).map((f) => f.type)).toEqual([BoardFrame.ACK, BoardFrame.HELLO]);
    expect(trailingZeros()).toBe(0);
  });

  it('given HELLO, always reports its ack and consumed count first, even with nothing new to report', () => {
    const h = harness();
    h.send(encodeCommand(Command.PING, 1));
    const lastReport = h.frames.at(-1)!;
    h.frames.length = 0;
    h.board.write(encodeHostHello(0x40));
    h.clock.advance(1);
    expect(h.frames.map((f) => [f.type, f.ack, f.consumed])).toEqual([
      [BoardFrame.ACK, lastReport.ack, lastReport.consumed + encodeHostHello(0x40).length],
      [BoardFrame.HELLO, 0x40, lastReport.consumed + encodeHostHello(0x40).length],
    ]);
  });

  it('HELLO disarms', () => {
    const h = harness();
    h.send(encodeArm(1, [readAt(0, 1)], {}, { shortHeaders: true }));
    h.board.write(encodeHostHello(0x40));
    h.clock.advance(1);
    expect(h.board.armed).toBeUndefined();
    h.frames.length = 0;
    h.chip.setInterrupt(true);
    h.clock.advance(1);
    expect(h.answers()).toEqual([]);
  });
});

describe('board model, protocol version 1', () => {
  it('says HELLO version 1 without programs or short headers, and knows no ARM', () => {
    const h = harness(1);
    expect(h.hello).toMatchObject({ version: 1, capabilities: 0xff, programBytes: 0 });
    h.send(encodeArm(1, [readAt(0, 1)], {}));
    expect(h.answers()).toEqual([{ id: NO_REQUEST_ID, data: [], status: Status.EBADCMD, value: Command.ARM }]);
  });
});
