/**
 * Bridge protocol version 2 in the sketch itself (docs/bridge-protocol.md §3, §3.2): the committed
 * hex in avr8js, driven at the frame level — no BridgeHal in between, so what is checked is exactly
 * what the board sends. SHORT headers, IF, LENGTH and DELAY transactions, and programs: ARM, DISARM,
 * RUN, when a program runs by itself, and the ENC28J60 receive program end to end.
 *
 * SPINET_SKETCH_HEX=path runs the suite against another hex (a version 1 build fails it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spiConfig } from 'avr8js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { Enc28j60Emulator } from '../../hal/enc28j60/emulator.js';
import { EMU_REGISTERS } from '../../hal/enc28j60/registers.js';
import {
  BoardFrame,
  Capability,
  Command,
  HostHelloOption,
  Status,
  TransactionFlag,
  computedReadLength,
  encodeArm,
  encodeCommand,
  encodeSpiCommand,
  transactionsLength,
  type Hello,
  type WireTransaction,
} from '../../hal/bridge/protocol.js';
import { createSimulatedBoard, type SimulatedBoard, type SpiChip } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { AVR_CLOCK_HZ } from '../../boards/sim/avr-board.js';
import { RawHost } from './raw-host.js';

const hexPath = process.env.SPINET_SKETCH_HEX;
const CS_PIN = 10;

let board: SimulatedBoard | undefined;

afterEach(async () => {
  await board?.stop();
  board = undefined;
});

/** A byte the sketch put into SPDR, and when (µs of simulated AVR time): its shift starts then. */
interface SpdrWrite {
  readonly value: number;
  readonly atUs: number;
}

/** Boot the sketch with `chip` on SPI, wait for its boot HELLO and open a session. */
async function boot(
  chip: SpiChip,
  clock = new VirtualClock(),
): Promise<{ host: RawHost; hello: Hello; spiBytesClocked: () => number; spdrWrites: SpdrWrite[] }> {
  board = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel: 'ideal', resetOnOpen: false, ...(hexPath ? { hexPath } : {}) });
  const host = new RawHost(board, clock);
  await host.until(() => host.frames.find((f) => f.type === BoardFrame.HELLO));
  // Every byte the sketch clocks, selected or not: the AVR's SPDR writes.
  const cpu = board.mcu.cpu!;
  const spdrWrite = cpu.writeHooks[spiConfig.SPDR]!;
  let clocked = 0;
  const spdrWrites: SpdrWrite[] = [];
  cpu.writeHooks[spiConfig.SPDR] = (value, oldValue, address, mask) => {
    clocked++;
    spdrWrites.push({ value, atUs: (cpu.cycles * 1e6) / AVR_CLOCK_HZ });
    return spdrWrite(value, oldValue, address, mask);
  };
  const hello = await host.hello();
  return { host, hello, spiBytesClocked: () => clocked, spdrWrites };
}

// SpiMemoryChip commands: 0x02 addr data… writes, 0x03 addr then reads; other opcodes echo ~mosi.
const WRITE = 0x02;
const READ = 0x03;
const read = (address: number, count: number, more: Partial<WireTransaction> = {}): WireTransaction => ({ write: Uint8Array.of(READ, address), read: count, ...more });
const write = (address: number, data: number[], more: Partial<WireTransaction> = {}): WireTransaction => ({ write: Uint8Array.of(WRITE, address, ...data), ...more });
const spi = (id: number, batch: WireTransaction[], shortHeaders = true) => encodeSpiCommand(id, batch, { shortHeaders });

/**
 * A program for the memory chip that reads byte `flagAt` and stops there while it is 0 (a run
 * "cut short by IF", so it does not run again by itself); else it reads the byte after it too.
 */
const flagProgram = (flagAt = 0): WireTransaction[] => [read(flagAt, 1), read(flagAt + 1, 1, { ifNonZero: 0 })];

const PROGRAM_ID = 0x70;

/**
 * ARM flagProgram under PROGRAM_ID; returns where its answers start (the ARM's DONE, then the runs).
 * `firstRun`: wait for the run arming starts too.
 */
async function armFlag(host: RawHost, firstRun = false): Promise<number> {
  const from = host.frames.length;
  await host.request(PROGRAM_ID, encodeArm(PROGRAM_ID, flagProgram(), {}, { shortHeaders: true }));
  if (firstRun) await host.until(() => (host.answers(PROGRAM_ID, from).length === 2 ? true : undefined));
  return from;
}

describe('bridge sketch, protocol version 2: HELLO and transaction headers', () => {
  it('says version 2, capabilities programs and short headers, and a 64-byte program limit', async () => {
    const { hello } = await boot(new SpiMemoryChip());
    expect(hello).toMatchObject({ version: 2, programBytes: 64, name: 'uno', sessions: 1 });
    expect(hello.capabilities & Capability.PROGRAMS).toBe(Capability.PROGRAMS);
    expect(hello.capabilities & Capability.SHORT_HEADERS).toBe(Capability.SHORT_HEADERS);
  });

  it('given the same batch with SHORT and with long headers, it clocks the same bytes and answers the same', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set(Array.from({ length: 64 }, (_, i) => (i * 37 + 5) & 0xff));
    const { host } = await boot(chip);
    // Short-able transactions, one too long for a SHORT header (read 20) and a duplex one, mixed.
    const batch = [read(5, 3), { write: Uint8Array.of(0x99, 0x42), duplex: true, keepSelected: true }, { read: 2 }, read(30, 20), write(100, [1, 2, 3])];
    const short = spi(1, batch, true);
    const long = spi(2, batch, false);
    expect(short.length).toBeLessThan(long.length);
    expect(short[2]! & TransactionFlag.SHORT).toBe(TransactionFlag.SHORT);

    const viaShort = await host.request(1, short);
    const mosiShort = chip.mosiLog.splice(0);
    const selectsShort = chip.selects;
    const viaLong = await host.request(2, long);
    const mosiLong = chip.mosiLog.splice(0);

    expect(viaShort).toEqual(viaLong);
    expect(viaShort).toMatchObject({ status: Status.OK, value: 3 + 2 + 2 + 20 });
    // The duplex probe answers 0x00 to its opcode, then the complement of what it is sent.
    expect(viaShort.data).toEqual([...chip.memory.subarray(5, 8), 0x00, 0xbd, 0xff, 0xff, ...chip.memory.subarray(30, 50)]);
    expect(mosiShort).toEqual(mosiLong);
    expect(chip.selects).toBe(2 * selectsShort);
    expect([...chip.memory.subarray(100, 103)]).toEqual([1, 2, 3]);
  });
});

describe('bridge sketch: ended DATA frames (HELLO option, caps bit 13)', () => {
  /** Frames on the wire since `from` (delimiter-separated, idle fill left out). */
  const wireFrames = (host: RawHost, from: number) => host.wire.slice(from).join(',').split(/(?:^|,)0(?=,|$)/).filter((f) => f !== '').length;

  it('says caps bit 13; after a HELLO asking for them, ends each answer with reads in its last DATA frame, and only then', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set(Array.from({ length: 200 }, (_, i) => i + 1));
    const { host, hello } = await boot(chip);
    expect(hello.capabilities & Capability.END_FRAMES).toBe(Capability.END_FRAMES);
    const answer = async (id: number, batch: WireTransaction[]) => {
      const from = host.wire.length;
      const reply = await host.request(id, spi(id, batch));
      await host.wait(0.5);
      return { reply, frames: wireFrames(host, from) };
    };
    // Without the option (this HELLO had none): a DONE frame after the data.
    expect(await answer(1, [read(0, 3)])).toEqual({ reply: { data: [1, 2, 3], status: Status.OK, value: 3 }, frames: 2 });
    await host.hello(HostHelloOption.END_FRAMES);
    for (const [id, reads, frames] of [[2, 3, 1], [3, 112, 1], [4, 113, 2], [5, 0, 1]] as const) {
      const batch = reads > 0 ? [read(0, reads)] : [write(0x40, [9])];
      const data = Array.from({ length: reads }, (_, i) => i + 1);
      expect(await answer(id, batch)).toEqual({ reply: { data, status: Status.OK, value: reads }, frames });
    }
    // A program run too; and a plain HELLO turns it off again.
    expect(await host.request(6, encodeArm(6, [read(0, 2)], {}, { shortHeaders: true }))).toMatchObject({ status: Status.OK });
    await host.until(() => host.answers(6).at(1));
    expect(host.answers(6)[1]).toEqual({ data: [1, 2], status: Status.OK, value: 2 });
    await host.hello();
    expect(await answer(7, [read(0, 3)])).toMatchObject({ frames: 2 });
  });
});

describe('bridge sketch: PAIRS transactions', () => {
  const pairs = (id: number, batch: WireTransaction[]) => encodeSpiCommand(id, batch, { shortHeaders: true, pairs: true });

  it('says caps bit 12 (PAIRS)', async () => {
    const { hello } = await boot(new SpiMemoryChip());
    expect(hello.capabilities & Capability.PAIRS).toBe(Capability.PAIRS);
  });

  it('clocks each two bytes of a PAIRS transaction in a CS frame of their own, as the same transactions unpaired, in commands and in program runs', async () => {
    const chip = new SpiMemoryChip();
    chip.memory[0] = 1;
    const { host } = await boot(chip);
    const commands = [0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c].map((op, i) => ({ write: Uint8Array.of(op, i) }));
    const batch: WireTransaction[] = [read(0, 1), ...commands, write(0x20, [7])];
    const paired = pairs(1, batch);
    expect(paired.length).toBeLessThan(spi(2, batch).length);
    expect(await host.request(1, paired)).toEqual({ data: [1], status: Status.OK, value: 1 });
    const pairedFrames = chip.csFrames.splice(0);
    expect(await host.request(2, spi(2, batch))).toEqual({ data: [1], status: Status.OK, value: 1 });
    expect(chip.csFrames.splice(0)).toEqual(pairedFrames);
    expect(pairedFrames).toEqual([[READ, 0, 0], ...commands.map((t) => [...t.write!]), [WRITE, 0x20, 7]]);
    expect(chip.memory[0x20]).toBe(7);

    // In a program (its last IF, on byte 1 = 0, always fails: no run again by itself): a run
    // clocks the pairs' frames; once byte 0 is 0, the IF that leads the pairs skips them all.
    chip.memory[1] = 0;
    const program: WireTransaction[] = [read(0, 1), { ...commands[0]!, ifNonZero: 0 }, ...commands.slice(1, 3), read(1, 1), { ...write(0x21, [9]), ifNonZero: 1 }];
    expect(await host.request(3, encodeArm(3, program, {}, { shortHeaders: true, pairs: true }))).toMatchObject({ status: Status.OK, value: transactionsLength(program, { shortHeaders: true, pairs: true }) });
    await host.until(() => host.frames.filter((f) => f.type === BoardFrame.DONE && f.id === 3).at(1)); // the ARM, then the run
    expect(chip.csFrames.splice(0)).toEqual([[READ, 0, 0], ...commands.slice(0, 3).map((t) => [...t.write!]), [READ, 1, 0]]);
    chip.memory[0] = 0;
    expect(await host.request(4, encodeCommand(Command.RUN, 4))).toMatchObject({ status: Status.OK, value: 1 });
    expect(chip.csFrames.splice(0)).toEqual([[READ, 0, 0]]);
    expect(chip.memory[0x21]).toBe(0);
  });
});

describe('bridge sketch: IF transactions', () => {
  it('when the byte is zero, it skips the rest of the batch: nothing clocked, CS released, DONE counts the bytes read before', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([0, 7]);
    const { host, spiBytesClocked } = await boot(chip);
    const clockedBefore = spiBytesClocked();
    const answer = await host.request(3, spi(3, [read(0, 2), write(0x40, [0xaa], { ifNonZero: 0 }), write(0x41, [0xbb]), read(0x10, 4)]));
    expect(answer).toEqual({ data: [0, 7], status: Status.OK, value: 2 });
    expect(spiBytesClocked() - clockedBefore).toBe(2 + 2); // the first transaction only
    expect(chip.selects).toBe(1);
    expect([...chip.memory.subarray(0x40, 0x42)]).toEqual([0, 0]);
    expect(board!.pins.level(CS_PIN)).toBe('high');
  });

  it('when the byte is not zero, it runs the rest of the batch', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([0, 7]);
    const { host } = await boot(chip);
    const answer = await host.request(4, spi(4, [read(0, 2), write(0x40, [0xaa], { ifNonZero: 1 }), write(0x41, [0xbb]), read(0x40, 2)]));
    expect(answer).toEqual({ data: [0, 7, 0xaa, 0xbb], status: Status.OK, value: 4 });
  });

  it('releases a CS held with KEEP_CS when the test fails, even if the skipped transaction keeps CS', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const answer = await host.request(5, spi(5, [read(0, 2, { keepSelected: true }), read(2, 1, { ifNonZero: 0, keepSelected: true })]));
    expect(answer).toEqual({ data: [0, 0], status: Status.OK, value: 2 });
    expect(board!.pins.level(CS_PIN)).toBe('high');
  });

  it('refers only to bytes already read: a later byte fails the test, skips, and the DONE says EINVAL', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([9, 9, 9, 9]);
    const { host } = await boot(chip);
    const answer = await host.request(6, spi(6, [read(0, 1), write(0x40, [0xaa], { ifNonZero: 1 })]));
    expect(answer).toEqual({ data: [9], status: Status.EINVAL, value: 1 });
    expect(chip.memory[0x40]).toBe(0);
  });
});

describe('bridge sketch: LENGTH transactions', () => {
  const pattern = Array.from({ length: 256 }, (_, i) => (i * 11 + 1) & 0xff);
  type Rule = NonNullable<WireTransaction['readLengthFrom']>;
  // [length bytes as read, rule, cap, expected count]
  const cases: [string, [number, number], Rule, number, number][] = [
    ['little-endian', [10, 0], { at: 0 }, 40, 10],
    ['big-endian', [0, 10], { at: 0, bigEndian: true }, 40, 10],
    ['minus', [12, 0], { at: 0, minus: 4 }, 40, 8],
    ['minus floored at 0', [3, 0], { at: 0, minus: 5 }, 40, 0],
    ['rounded up to even', [11, 0], { at: 0, even: true }, 40, 12],
    ['capped', [200, 0], { at: 0 }, 40, 40],
    ['capped after rounding (odd cap)', [39, 0], { at: 0, even: true }, 39, 39],
    ['0xFFFF rounded up, capped (no wrap to 0)', [0xff, 0xff], { at: 0, even: true }, 100, 100],
    ['big-endian W5500 style: counts its own 2 bytes', [0, 30], { at: 0, bigEndian: true, minus: 2 }, 100, 28],
  ];

  it.each(cases)('reads the count the header gives: %s', async (_name, lengthBytes, rule, cap, expected) => {
    const chip = new SpiMemoryChip();
    chip.memory.set(pattern);
    chip.memory.set(lengthBytes, 0x20);
    const { host } = await boot(chip);
    expect(computedReadLength(rule, Uint8Array.from(lengthBytes), cap)).toBe(expected);
    // The header, then (CS kept) the bytes after it: the chip's read continues.
    const answer = await host.request(7, spi(7, [read(0x20, 2, { keepSelected: true }), { read: cap, readLengthFrom: rule }]));
    expect(answer.status).toBe(Status.OK);
    expect(answer.value).toBe(2 + expected);
    expect(answer.data).toEqual([...chip.memory.subarray(0x20, 0x20 + 2 + expected)]);
  });

  it('reads 0 and says EINVAL when the length bytes have not been read', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set(pattern);
    const { host } = await boot(chip);
    expect(computedReadLength({ at: 1 }, chip.memory.subarray(0, 2), 10)).toBeUndefined();
    const answer = await host.request(8, spi(8, [read(0, 2, { keepSelected: true }), { read: 10, readLengthFrom: { at: 1 } }, read(0x80, 1)]));
    expect(answer).toEqual({ data: [...pattern.slice(0, 2), pattern[0x80]!], status: Status.EINVAL, value: 3 });
  });

  it('refers to the first 64 read bytes while no more have been read: byte 62 after 64 is there, byte 0 after 65 is not', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set(pattern);
    chip.memory.set([5, 0], 62);
    const { host } = await boot(chip);
    const full = await host.request(9, spi(9, [read(0, 64, { keepSelected: true }), { read: 50, readLengthFrom: { at: 62 } }]));
    expect(full).toMatchObject({ status: Status.OK, value: 64 + 5 });
    expect(full.data).toEqual([...chip.memory.subarray(0, 69)]);
    // The 65th read byte is stored over byte 0 in the board's DATA buffer.
    const over = await host.request(10, spi(10, [read(0, 65, { keepSelected: true }), { read: 50, readLengthFrom: { at: 0 } }]));
    expect(over).toMatchObject({ status: Status.EINVAL, value: 65 });
  });
});

describe('bridge sketch: DELAY transactions', () => {
  /**
   * Run [write A][write B, `more`] and return the time from A's last byte to B's first on SPI (µs
   * between their SPDR writes: A's own shift, 1 µs at 8 MHz, is inside it).
   */
  async function gapBeforeSecond(host: RawHost, spdrWrites: SpdrWrite[], id: number, more: Partial<WireTransaction>, shortHeaders = true): Promise<number> {
    const from = spdrWrites.length;
    const answer = await host.request(id, spi(id, [write(0x40, [0xa1]), write(0x41, [0xb2], more)], shortHeaders));
    expect(answer).toEqual({ data: [], status: Status.OK, value: 0 });
    const clocked = spdrWrites.slice(from);
    expect(clocked.map((w) => w.value)).toEqual([WRITE, 0x40, 0xa1, WRITE, 0x41, 0xb2]);
    return clocked[3]!.atUs - clocked[2]!.atUs;
  }

  it('says caps bit 11 (DELAYS)', async () => {
    const { hello } = await boot(new SpiMemoryChip());
    expect(hello.capabilities & Capability.DELAYS).toBe(Capability.DELAYS);
  });

  it('given [write A][DELAY 500 µs, write B], clocks B at least 500 µs after A, and without DELAY at once; SHORT and long headers alike', async () => {
    const chip = new SpiMemoryChip();
    const { host, spdrWrites } = await boot(chip);
    const undelayed = await gapBeforeSecond(host, spdrWrites, 1, {});
    expect(undelayed).toBeLessThan(50);
    // The operand follows the lengths, little-endian: 500 = 0x01F4.
    const short = spi(2, [write(0x41, [0xb2], { delayUs: 500 })], true);
    expect([...short.subarray(2, 6)]).toEqual([TransactionFlag.SHORT | TransactionFlag.DELAY | TransactionFlag.LAST, 0x03, 0xf4, 0x01]);
    for (const [id, shortHeaders] of [[2, true], [3, false]] as const) {
      const delayed = await gapBeforeSecond(host, spdrWrites, id, { delayUs: 500 }, shortHeaders);
      expect(delayed).toBeGreaterThanOrEqual(500);
      expect(delayed).toBeLessThan(500 + 50);
    }
    expect([...chip.memory.subarray(0x40, 0x42)]).toEqual([0xa1, 0xb2]);
  });

  it('leaves CS as the previous transaction left it while it waits: held after KEEP_CS, else released', async () => {
    const chip = new SpiMemoryChip();
    const { host, spdrWrites } = await boot(chip);
    let selects = chip.selects;
    await gapBeforeSecond(host, spdrWrites, 1, { delayUs: 200 });
    expect(chip.selects - selects).toBe(2);
    selects = chip.selects;
    const from = spdrWrites.length;
    const answer = await host.request(2, spi(2, [{ write: Uint8Array.of(READ, 0x40), keepSelected: true }, { read: 2, delayUs: 200 }]));
    expect(answer).toEqual({ data: [0xa1, 0xb2], status: Status.OK, value: 2 });
    expect(chip.selects - selects).toBe(1);
    const clocked = spdrWrites.slice(from);
    expect(clocked[2]!.atUs - clocked[1]!.atUs).toBeGreaterThanOrEqual(200);
  });

  it('reads the operand after IF and LENGTH: flags, lens, IF at, LENGTH at opts, DELAY us', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([3, 0, 0x11, 0x22, 0x33]);
    const { host, spdrWrites } = await boot(chip);
    const from = spdrWrites.length;
    const batch = [read(0, 2, { keepSelected: true }), { read: 10, ifNonZero: 0, readLengthFrom: { at: 0 }, delayUs: 300 }];
    const command = spi(4, batch);
    // After the first transaction (2 header bytes, 2 write bytes): 300 = 0x012C.
    expect([...command.subarray(2 + 4)]).toEqual([
      TransactionFlag.SHORT | TransactionFlag.IF | TransactionFlag.LENGTH | TransactionFlag.DELAY | TransactionFlag.LAST, 0xa0, 0, 0, 0, 0x2c, 0x01,
    ]);
    const answer = await host.request(4, command);
    expect(answer).toEqual({ data: [3, 0, 0x11, 0x22, 0x33], status: Status.OK, value: 5 });
    const clocked = spdrWrites.slice(from);
    expect(clocked.length).toBe(2 + 2 + 3);
    expect(clocked[4]!.atUs - clocked[3]!.atUs).toBeGreaterThanOrEqual(300);
  });

  it('when an IF fails, skips the delay with the transaction: the DONE does not wait for it', async () => {
    const answerMs = async (host: RawHost, id: number): Promise<number> => {
      const start = host.clock.now();
      const answer = await host.request(id, spi(id, [read(0, 1), write(0x40, [0xaa], { ifNonZero: 0, delayUs: 20_000 })]));
      expect(answer.status).toBe(Status.OK);
      return host.clock.now() - start;
    };
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const skipped = await answerMs(host, 5);
    expect(chip.memory[0x40]).toBe(0);
    chip.memory[0] = 1;
    const ran = await answerMs(host, 6);
    expect(chip.memory[0x40]).toBe(0xaa);
    expect(ran).toBeGreaterThanOrEqual(20);
    expect(skipped).toBeLessThan(5);
  });

  it('keeps a DELAY in a program run as in a command', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([0, 1]);
    const { host, spdrWrites } = await boot(chip);
    const from = spdrWrites.length;
    // The IF stops each run, so it runs once (just armed).
    await host.request(PROGRAM_ID, encodeArm(PROGRAM_ID, [read(1, 1), read(2, 1, { delayUs: 400 }), read(0, 1, { ifNonZero: 1 })], {}, { shortHeaders: true }));
    await host.until(() => (host.answers(PROGRAM_ID).length >= 2 ? true : undefined));
    const clocked = spdrWrites.slice(from);
    expect(clocked.length).toBeGreaterThanOrEqual(6);
    expect(clocked[3]!.atUs - clocked[2]!.atUs).toBeGreaterThanOrEqual(400);
  });
});

describe('bridge sketch: ARM, DISARM, RUN', () => {
  it('refuses a program longer than programBytes with EINVAL, consumes it, and never runs it', async () => {
    const chip = new SpiMemoryChip();
    const { host, hello } = await boot(chip);
    const tooLong = encodeArm(PROGRAM_ID, [{ write: new Uint8Array(60).fill(0x55) }], {});
    expect(tooLong[3]).toBe(hello.programBytes + 1);
    const from = host.frames.length;
    host.send(Uint8Array.of(...tooLong, ...encodeCommand(Command.PING, 11)));
    const ping = await host.until(() => host.answers(11, from)[0]);
    expect(ping.status).toBe(Status.OK);
    expect(host.answers(PROGRAM_ID, from)).toEqual([{ data: [], status: Status.EINVAL, value: 65 }]);
    chip.setInterrupt(true);
    await host.wait(5);
    expect(host.answers(PROGRAM_ID, from)).toHaveLength(1);
    expect((await host.request(12, encodeCommand(Command.RUN, 12))).value).toBe(0);
    expect(chip.selects).toBe(0);
  });

  it('takes a program of exactly programBytes and runs it at once (packets may already wait)', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    // 4 + (6 + 54) = 64 bytes with SHORT headers; the flag byte is 0, so the run stops after it.
    const program = [read(0, 1), write(0x80, Array.from({ length: 52 }, (_, i) => i), { ifNonZero: 0 })];
    expect(transactionsLength(program, { shortHeaders: true })).toBe(64);
    const from = host.frames.length;
    const armed = await host.request(PROGRAM_ID, encodeArm(PROGRAM_ID, program, {}, { shortHeaders: true }));
    expect(armed).toEqual({ data: [], status: Status.OK, value: 64 });
    const runs = await host.until(() => host.answers(PROGRAM_ID, from).slice(1)[0]);
    expect(runs).toEqual({ data: [0], status: Status.OK, value: 1 });
  });

  it('runs on every INT edge until DISARM, then not; RUN answers 0 on a disarmed board', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const from = await armFlag(host);
    const runs = () => host.answers(PROGRAM_ID, from).slice(1); // after the ARM's own DONE
    await host.until(() => (runs().length === 1 ? true : undefined));
    chip.setInterrupt(true);
    await host.until(() => (runs().length === 2 ? true : undefined));
    chip.setInterrupt(false);
    await host.until(() => (runs().length === 3 ? true : undefined));
    expect(runs()).toEqual(Array(3).fill({ data: [0], status: Status.OK, value: 1 }));

    expect(await host.request(13, encodeCommand(Command.DISARM, 13))).toMatchObject({ status: Status.OK });
    chip.setInterrupt(true);
    await host.wait(3);
    chip.setInterrupt(false);
    await host.wait(3);
    expect(runs()).toHaveLength(3);
    expect(await host.request(14, encodeCommand(Command.RUN, 14))).toEqual({ data: [], status: Status.OK, value: 0 });
    expect(runs()).toHaveLength(3);
  });

  it('on RUN, runs the armed program at once and answers after the run', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([0, 0x33]);
    const { host } = await boot(chip);
    await host.request(PROGRAM_ID, encodeArm(PROGRAM_ID, flagProgram(), {}, { shortHeaders: true }));
    await host.wait(2);
    chip.memory[0] = 1; // the next run takes the second transaction too, and then keeps running
    const from = host.frames.length;
    const run = await host.request(15, encodeCommand(Command.RUN, 15));
    expect(run).toEqual({ data: [], status: Status.OK, value: 1 });
    expect(host.answers(PROGRAM_ID, from)[0]).toEqual({ data: [1, 0x33], status: Status.OK, value: 2 });
    expect(host.doneIndex(PROGRAM_ID, from)).toBeLessThan(host.doneIndex(15, from));
    await host.request(16, encodeCommand(Command.DISARM, 16));
  });

  it('runs again by itself while runs are not cut short by IF, and stops once one is', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const from = await armFlag(host);
    await host.wait(2);
    chip.memory[0] = 1;
    chip.setInterrupt(true); // an edge: one run, which is not cut short, so it runs again …
    await host.until(() => (host.answers(PROGRAM_ID, from).length > 6 ? true : undefined));
    chip.memory[0] = 0; // … until one is
    await host.wait(3);
    const count = host.answers(PROGRAM_ID, from).length;
    await host.wait(5);
    expect(host.answers(PROGRAM_ID, from)).toHaveLength(count);
    expect(host.answers(PROGRAM_ID, from).at(-1)).toEqual({ data: [0], status: Status.OK, value: 1 });
    // The host's commands still get through between runs.
    expect((await host.request(17, encodeCommand(Command.PING, 17))).status).toBe(Status.OK);
  });

  it('runs after an SPI command that ends with INT asserted (no edge to show it), not after one that ends with INT clear', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const from = await armFlag(host);
    const runs = () => host.answers(PROGRAM_ID, from).length - 1;
    await host.until(() => (runs() === 1 ? true : undefined));
    chip.setInterrupt(true);
    await host.until(() => (runs() === 2 ? true : undefined));
    const beforeCommand = host.frames.length;
    await host.request(18, spi(18, [read(0x10, 1)]));
    await host.until(() => (runs() === 3 ? true : undefined));
    expect(host.doneIndex(18, beforeCommand)).toBeLessThan(host.doneIndex(PROGRAM_ID, beforeCommand));
    chip.setInterrupt(false);
    await host.until(() => (runs() === 4 ? true : undefined));
    await host.request(19, spi(19, [read(0x10, 1)]));
    await host.wait(3);
    expect(runs()).toBe(4);
  });

  it('does not run while the host holds CS across requests (KEEP_CS on the last transaction)', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const from = await armFlag(host, true);
    await host.request(20, spi(20, [read(0x10, 2, { keepSelected: true })]));
    chip.setInterrupt(true);
    await host.wait(3);
    expect(host.answers(PROGRAM_ID, from)).toHaveLength(2);
    const held = host.frames.length;
    await host.request(21, spi(21, [{ read: 2 }]));
    await host.until(() => (host.answers(PROGRAM_ID, from).length === 3 ? true : undefined));
    expect(host.doneIndex(21, held)).toBeLessThan(host.doneIndex(PROGRAM_ID, held));
  });

  it('disarms on HELLO', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    const from = await armFlag(host, true);
    await host.hello();
    chip.setInterrupt(true);
    await host.wait(3);
    expect(host.answers(PROGRAM_ID, from)).toHaveLength(2);
    expect((await host.request(22, encodeCommand(Command.RUN, 22))).value).toBe(0);
  });

  it('with QUIET, sends no INT events while armed (the runs still happen); without it, and after DISARM, it does', async () => {
    const chip = new SpiMemoryChip();
    const { host } = await boot(chip);
    let from = host.frames.length;
    await host.request(PROGRAM_ID, encodeArm(PROGRAM_ID, flagProgram(), { quiet: true }, { shortHeaders: true }));
    chip.setInterrupt(true);
    await host.wait(3);
    chip.setInterrupt(false);
    await host.until(() => (host.answers(PROGRAM_ID, from).length === 4 ? true : undefined));
    await host.wait(3);
    expect(host.intEvents(from)).toEqual([]);
    // Every frame still carries the level: the runs' frames showed it.
    expect(host.frames.slice(from).some((f) => f.intAsserted)).toBe(true);

    await host.request(23, encodeCommand(Command.DISARM, 23));
    from = host.frames.length;
    chip.setInterrupt(true);
    await host.until(() => host.intEvents(from).find((event) => event.payload[1] === 1));

    from = await armFlag(host, true);
    chip.setInterrupt(false);
    await host.until(() => (host.answers(PROGRAM_ID, from).length === 3 ? true : undefined));
    // (An edge that falls between the sketch's look at the edge count and at the level gives two events.)
    await host.until(() => host.intEvents(from).find((event) => event.payload[1] === 0));
  });

  it('ends a program without a LAST transaction as if LAST came, with EINVAL, releases CS, and does not run it again by itself', async () => {
    const chip = new SpiMemoryChip();
    chip.memory.set([1, 2, 3, 4, 5, 6, 7]);
    const { host } = await boot(chip);
    const program = [read(4, 2), read(6, 1, { keepSelected: true })];
    const arm = encodeArm(PROGRAM_ID, program, {}, { shortHeaders: true });
    const lastFlags = 4 + transactionsLength(program.slice(0, -1), { shortHeaders: true });
    expect(arm[lastFlags]! & TransactionFlag.LAST).toBe(TransactionFlag.LAST);
    arm[lastFlags] = arm[lastFlags]! & ~TransactionFlag.LAST;
    const from = host.frames.length;
    await host.request(PROGRAM_ID, arm);
    const run = await host.until(() => host.answers(PROGRAM_ID, from)[1]);
    expect(run).toEqual({ data: [5, 6, 7], status: Status.EINVAL, value: 3 });
    expect(board!.pins.level(CS_PIN)).toBe('high');
    await host.wait(5);
    expect(host.answers(PROGRAM_ID, from)).toHaveLength(2);
    expect((await host.request(24, spi(24, [read(0, 1)]))).data).toEqual([1]);
  });
});

describe('bridge sketch: the ENC28J60 receive program (docs/bridge-protocol.md §3.2)', () => {
  const R = EMU_REGISTERS;
  const RCR = 0x00, WCR = 0x40, BFS = 0x80, BFC = 0xa0, RBM = 0x3a;
  const ECON1_BSEL0 = 0x01, ECON1_RXEN = 0x04, ECON2_PKTDEC = 0x40, EIE_INTIE = 0x80, EIE_PKTIE = 0x40, MACON1_MARXEN = 0x01;
  const EIR_PKTIF = 0x40;
  const CAP = 1520;
  const RX_END = 0x0fff;

  const op = (opcode: number, register: readonly [number, number], ...data: number[]): WireTransaction => ({ write: Uint8Array.of(opcode | register[1], ...data) });
  const rcr = (register: readonly [number, number], more: Partial<WireTransaction> = {}): WireTransaction => ({ ...op(RCR, register), read: 1, ...more });

  /** The program of the spec, 35 bytes with SHORT headers. */
  const receiveProgram: WireTransaction[] = [
    rcr(R.EIR),
    op(BFS, R.ECON1, ECON1_BSEL0),
    rcr(R.EPKTCNT),
    op(BFC, R.ECON1, ECON1_BSEL0),
    rcr(R.ERDPTL, { ifNonZero: 1 }),
    rcr(R.ERDPTH),
    { write: Uint8Array.of(RBM), read: 6, keepSelected: true },
    { read: CAP, readLengthFrom: { at: 6, even: true } },
    op(BFS, R.ECON2, ECON2_PKTDEC),
  ];

  /** Receive buffer 0..RX_END, receiver and packet interrupt on (bank 0 at the end). */
  const initialise: WireTransaction[] = [
    op(WCR, R.ERXSTL, 0), op(WCR, R.ERXSTH, 0), op(WCR, R.ERXNDL, RX_END & 0xff), op(WCR, R.ERXNDH, RX_END >> 8),
    op(WCR, R.ERXRDPTL, RX_END & 0xff), op(WCR, R.ERXRDPTH, RX_END >> 8), op(WCR, R.ERDPTL, 0), op(WCR, R.ERDPTH, 0),
    op(BFS, R.ECON1, 0x02), op(WCR, R.MACON1, MACON1_MARXEN), op(BFC, R.ECON1, 0x03),
    op(WCR, R.EIE, EIE_INTIE | EIE_PKTIE), op(BFS, R.ECON1, ECON1_RXEN),
  ];

  /** A broadcast frame (it passes the reset-value receive filter) of `length` bytes, no FCS. */
  function frame(length: number, seed: number): Uint8Array {
    const f = Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
    f.fill(0xff, 0, 6);
    f.set([0x02, 0, 0, 0, 0, seed], 6);
    f.set([0x88, 0xb5], 12);
    return f;
  }

  /** What one run that took a packet reads, taken apart. */
  function parseRun(bytes: number[]) {
    const u16 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8);
    return { eir: bytes[0]!, packets: bytes[1]!, readPointer: u16(2), nextPacket: u16(4), byteCount: u16(6), frame: bytes.slice(10) };
  }

  it('streams every frame put on the wire to the host as a run answer, unasked, until EPKTCNT is 0', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const violations: string[] = [];
    const chip = new Enc28j60Emulator({ clock, strict: true, onStrictViolation: (message) => violations.push(message) });
    chip.plugInto(lan);
    const peer = lan.plug({ label: 'peer', deliver: () => {} });
    const { host } = await boot(chip, clock);
    expect((await host.request(30, spi(30, initialise))).status).toBe(Status.OK);

    const arm = encodeArm(PROGRAM_ID, receiveProgram, { quiet: true }, { shortHeaders: true });
    expect(arm[3]).toBe(35);
    const from = host.frames.length;
    expect(await host.request(PROGRAM_ID, arm)).toEqual({ data: [], status: Status.OK, value: 35 });
    const runs = () => host.answers(PROGRAM_ID, from).slice(1);
    // Just armed: one run, nothing waits, cut short after EIR and EPKTCNT.
    expect(await host.until(() => runs()[0])).toEqual({ data: [0, 0], status: Status.OK, value: 2 });

    // Three frames at once: one INT edge; the second and third arrive with INT already asserted.
    const sent = [frame(60, 1), frame(101, 2), frame(1000, 3)];
    for (const f of sent) peer.send(f);
    expect(chip.pendingPackets).toBe(3);
    await host.until(() => (runs().length === 5 ? true : undefined), 500);
    await host.wait(5);
    expect(runs()).toHaveLength(5);

    let expectedStart = 0;
    sent.forEach((f, k) => {
      const run = runs()[1 + k]!;
      const parsed = parseRun(run.data);
      const byteCount = f.length + 4; // with the FCS (every frame here is ≥ 60 bytes)
      const read = byteCount + (byteCount & 1); // the pad byte: ERDPT ends on the next packet
      expect(run.status, `frame ${k}`).toBe(Status.OK);
      expect(run.value, `frame ${k}`).toBe(10 + read);
      expect(run.data, `frame ${k}`).toHaveLength(10 + read);
      expect(parsed.eir & EIR_PKTIF).toBe(EIR_PKTIF);
      expect(parsed.packets).toBe(3 - k);
      expect(parsed.readPointer).toBe(expectedStart);
      expect(parsed.byteCount).toBe(byteCount);
      expect(parsed.frame.slice(0, f.length)).toEqual([...f]);
      expectedStart = parsed.nextPacket;
    });
    // After the last packet: a run that stops after 2 bytes, EPKTCNT = 0, INT released.
    expect(runs()[4]).toEqual({ data: [0, 0], status: Status.OK, value: 2 });
    expect(chip.pendingPackets).toBe(0);
    expect(chip.peek16('ERDPTL')).toBe(expectedStart);
    expect(chip.interruptAsserted).toBe(false);
    expect(host.frames.at(-1)!.intAsserted).toBe(false);
    // QUIET: the runs told the host; no INT events.
    expect(host.intEvents(from)).toEqual([]);

    // Later, one more frame: its edge starts the next runs.
    const late = frame(333, 4);
    peer.send(late);
    await host.until(() => (runs().length === 7 ? true : undefined), 500);
    const lateRun = parseRun(runs()[5]!.data);
    expect(lateRun.readPointer).toBe(expectedStart);
    expect(lateRun.frame.slice(0, late.length)).toEqual([...late]);
    expect(runs()[6]).toEqual({ data: [0, 0], status: Status.OK, value: 2 });
    expect(chip.pendingPackets).toBe(0);
    expect(violations).toEqual([]);
  });
});
