import { describe, expect, it } from 'vitest';
import { MockHal, type LinkModel, type SpiSlave } from '../../hal/mock/mock-hal.js';
import { HalError, type SpiTransaction } from '../../src/drivers/hal.js';
import { transactionsLength } from '../../hal/bridge/protocol.js';
import { EMU_REGISTERS, Enc28j60Emulator } from '../../hal/enc28j60/emulator.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { crc32 } from '../../src/wire/crc32.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { PinSource, SpiProbe, makeFrame } from './spi-helpers.js';

/**
 * The mock HAL's programs (SpiDevice.arm; docs/bridge-protocol.md §3 IF and LENGTH, §3.2): on the
 * emulated ENC28J60 with the receive program the driver arms, and on a scripted SPI slave where
 * the exact bytes clocked matter.
 */

const OWN = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x01);
const PEER = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);
const RX_END = 0x19ff;

// SPI opcodes (DS-ENC Table 4-1) and the registers the receive program touches.
const RCR = 0x00, BFS = 0x80, BFC = 0xa0, RBM = 0x3a;
const reg = (name: keyof typeof EMU_REGISTERS) => EMU_REGISTERS[name][1];
const EIR_PKTIF = 0x40;
const EIE_INTIE = 0x80, EIE_PKTIE = 0x40;
const ECON2_PKTDEC = 0x40;

/** The ENC28J60 receive program of docs/bridge-protocol.md §3.2, byte for byte. */
const RECEIVE_PROGRAM: SpiTransaction[] = [
  { write: Uint8Array.of(RCR | reg('EIR')), read: 1 }, // byte 0
  { write: Uint8Array.of(BFS | reg('ECON1'), 0x01) }, // bank 1
  { write: Uint8Array.of(RCR | reg('EPKTCNT')), read: 1 }, // byte 1
  { write: Uint8Array.of(BFC | reg('ECON1'), 0x01) }, // bank 0
  { write: Uint8Array.of(RCR | reg('ERDPTL')), read: 1, ifNonZero: 1 }, // byte 2: stop when EPKTCNT = 0
  { write: Uint8Array.of(RCR | reg('ERDPTH')), read: 1 }, // byte 3
  { write: Uint8Array.of(RBM), read: 6, keepSelected: true }, // bytes 4..9: next, byte count, status
  { read: 1520, readLengthFrom: { at: 6, even: true } }, // the frame, its FCS and the pad byte
  { write: Uint8Array.of(BFS | reg('ECON2'), ECON2_PKTDEC) },
];

/** An emulated chip set up to receive (DS-ENC §6), INT on PKTIF unless `interrupts` is false. */
function receivingChip(clock: VirtualClock, options: { interrupts?: boolean } = {}) {
  const chip = new Enc28j60Emulator({ clock, strict: true });
  chip.plugInto(new VirtualLan(clock)); // the cable: link up
  const spi = new SpiProbe(chip);
  spi.write16('ERXSTL', 0);
  spi.write16('ERXNDL', RX_END);
  spi.write16('ERXRDPTL', RX_END);
  spi.write16('ERDPTL', 0);
  spi.write('MACON1', 0x01);
  spi.write('MACON3', 0x20 | 0x10 | 0x02);
  spi.writeMac(OWN);
  spi.write('EIE', EIE_PKTIE | (options.interrupts === false ? 0 : EIE_INTIE));
  spi.bfs('ECON1', 0x04); // RXEN
  spi.bank(0);
  return { chip, spi };
}

function enc28j60Hal(options: { interrupts?: boolean; linkModel?: LinkModel } = {}) {
  const clock = new VirtualClock();
  const { chip, spi } = receivingChip(clock, options);
  const hal = new MockHal({ clock, slave: chip, interrupt: chip, linkModel: options.linkModel });
  const runs: Uint8Array[] = [];
  const arm = (armOptions = {}) => hal.spi.arm!(RECEIVE_PROGRAM, (r) => runs.push(r), armOptions);
  return { clock, chip, spi, hal, runs, arm };
}

/** A run's bytes, read as the receive program lays them out. */
function parseRun(run: Uint8Array) {
  const u16 = (at: number) => run[at]! | (run[at + 1]! << 8);
  if (run.length === 2) return { eir: run[0]!, pending: run[1]! };
  const byteCount = u16(6);
  return {
    eir: run[0]!,
    pending: run[1]!,
    start: u16(2),
    next: u16(4),
    byteCount,
    receivedOk: (run[8]! & 0x80) !== 0,
    data: run.subarray(10),
  };
}

/** What a run that took `frame` from `start` with `pending` packets waiting must carry. */
function expectPacketRun(run: Uint8Array, expected: { start: number; frame: Uint8Array; pending: number }) {
  const padded = new Uint8Array(Math.max(60, expected.frame.length));
  padded.set(expected.frame);
  const byteCount = padded.length + 4;
  const stored = byteCount + (byteCount & 1);
  const p = parseRun(run);
  expect(p).toMatchObject({ pending: expected.pending, start: expected.start, next: expected.start + 6 + stored, byteCount, receivedOk: true });
  expect(p.eir & EIR_PKTIF).toBe(EIR_PKTIF);
  // Exactly the frame, its FCS and the pad byte: ERDPT ends on the next packet.
  expect(run.length).toBe(10 + stored);
  expect(Array.from(p.data!.subarray(0, padded.length))).toEqual(Array.from(padded));
  const fcs = new DataView(p.data!.buffer, p.data!.byteOffset + padded.length, 4).getUint32(0, true);
  expect(fcs).toBe(crc32(padded));
  return p.next!;
}

function expectIdleRun(run: Uint8Array | undefined) {
  expect(run?.length).toBe(2);
  expect(parseRun(run!)).toMatchObject({ pending: 0 });
}

/**
 * Records every chip-select cycle (MOSI bytes, virtual time). Read clocks (MOSI 0x00) are answered
 * from a script, then with `idle`; MISO while the opcode goes out is `idle`.
 */
class ScriptedSlave implements SpiSlave {
  readonly cycles: { at: number; mosi: number[] }[] = [];
  private readonly script: number[] = [];
  private current: number[] | undefined;
  /** Chip-select asserted now. */
  get selected(): boolean {
    return this.current !== undefined;
  }
  constructor(
    private readonly clock: VirtualClock,
    private readonly idle = 0,
  ) {}
  answer(...bytes: number[]): void {
    this.script.push(...bytes);
  }
  spiSelect(): void {
    if (this.current) throw new Error('chip-select asserted twice');
    this.current = [];
    this.cycles.push({ at: this.clock.now(), mosi: this.current });
  }
  spiExchange(mosi: number): number {
    this.current!.push(mosi);
    return (mosi === 0x00 ? this.script.shift() : undefined) ?? this.idle;
  }
  spiDeselect(): void {
    this.current = undefined;
  }
  get mosi(): number[][] {
    return this.cycles.map((c) => c.mosi);
  }
}


function scriptedHal(options: { idle?: number; maxProgramBytes?: number; linkModel?: LinkModel; interrupt?: PinSource } = {}) {
  const clock = new VirtualClock();
  const slave = new ScriptedSlave(clock, options.idle);
  const hal = new MockHal({ clock, slave, maxProgramBytes: options.maxProgramBytes, linkModel: options.linkModel, interrupt: options.interrupt });
  const runs: number[][] = [];
  const arm = (program: SpiTransaction[]) => hal.spi.arm!(program, (r) => runs.push(Array.from(r)));
  return { clock, slave, hal, runs, arm };
}

async function settled<T>(clock: VirtualClock, promise: Promise<T>): Promise<T> {
  await clock.advanceAsync(0);
  return promise;
}

const b = (...bytes: number[]) => Uint8Array.of(...bytes);

describe('mock HAL programs: the ENC28J60 receive program (bridge-protocol.md §3.2)', () => {
  it('is the 35 bytes the document says, with SHORT headers', () => {
    expect(transactionsLength(RECEIVE_PROGRAM, { shortHeaders: true })).toBe(35);
  });

  it('given the receive program armed, when frames arrive, each run carries EIR, EPKTCNT, ERDPT, the header and the frame with FCS and pad, in order, with no transfer()', async () => {
    const { clock, chip, hal, runs, arm } = enc28j60Hal();
    await settled(clock, arm());
    // Just armed: it looks once, finds nothing and stops at its IF after two bytes.
    expect(runs.length).toBe(1);
    expectIdleRun(runs[0]);

    // A burst: three frames wait when the line falls (60 bytes, 61 with an odd byte count, 100).
    const burst = [makeFrame(OWN, PEER, 60, 1), makeFrame(OWN, PEER, 61, 2), makeFrame(OWN, PEER, 100, 3)];
    for (const frame of burst) chip.receiveFrame(frame);
    await clock.advanceAsync(0);
    expect(runs.length).toBe(1 + 3 + 1);
    let start = 0;
    burst.forEach((frame, i) => (start = expectPacketRun(runs[1 + i]!, { start, frame, pending: 3 - i })));
    expectIdleRun(runs[4]);

    // Later, one full-size frame on its own.
    await clock.advanceAsync(5);
    const big = makeFrame(OWN, PEER, 1514, 4);
    chip.receiveFrame(big);
    await clock.advanceAsync(0);
    expect(runs.length).toBe(7);
    expectPacketRun(runs[5]!, { start, frame: big, pending: 1 });
    expectIdleRun(runs[6]);

    expect(chip.pendingPackets).toBe(0);
    expect(hal.interrupt.asserted).toBe(false);
    expect(hal.log.totals).toMatchObject({ batches: 0, runs: 7, programCommands: 1 });
    expect(chip.strictViolations).toEqual([]);
  });

  it('runArmed() runs it once now: a packet that came without an interrupt edge is taken', async () => {
    const { clock, chip, hal, runs, arm } = enc28j60Hal({ interrupts: false });
    await settled(clock, arm());
    const frame = makeFrame(OWN, PEER, 80, 7);
    chip.receiveFrame(frame);
    await clock.advanceAsync(10);
    expect(runs.length).toBe(1); // no edge, no run
    await settled(clock, hal.spi.runArmed!());
    // The run takes the packet; having found one, it looks again and stops.
    expect(runs.length).toBe(3);
    expectPacketRun(runs[1]!, { start: 0, frame, pending: 1 });
    expectIdleRun(runs[2]);
    expect(chip.pendingPackets).toBe(0);
    expect(hal.log.totals).toMatchObject({ batches: 0, runs: 3, programCommands: 2 });
  });

  it('disarm() stops the runs: frames then wait in the chip and the interrupt reaches the host again', async () => {
    const { clock, chip, hal, runs, arm } = enc28j60Hal();
    const edges: boolean[] = [];
    hal.interrupt.onChange((a) => edges.push(a));
    await settled(clock, arm());
    await settled(clock, hal.spi.disarm!());
    chip.receiveFrame(makeFrame(OWN, PEER, 60, 1));
    chip.receiveFrame(makeFrame(OWN, PEER, 60, 2));
    await clock.advanceAsync(10);
    expect(runs.length).toBe(1);
    expect(chip.pendingPackets).toBe(2);
    expect(edges).toEqual([true]);
    // runArmed with nothing armed answers without running anything.
    await settled(clock, hal.spi.runArmed!());
    expect(runs.length).toBe(1);
    expect(chip.pendingPackets).toBe(2);
  });

  it('armed with quietInterrupts, the host hears no interrupt edges while the level stays true to the chip', async () => {
    for (const quiet of [true, false]) {
      const { clock, chip, spi, hal } = enc28j60Hal();
      const edges: boolean[] = [];
      hal.interrupt.onChange((a) => edges.push(a));
      const runs: number[][] = [];
      // A watcher that reads ERDPTH (0 here) and stops at its IF: it never clears the interrupt.
      const watcher: SpiTransaction[] = [
        { write: b(RCR | reg('ERDPTH')), read: 1 },
        { write: b(RCR | reg('EIR')), read: 1, ifNonZero: 0 },
      ];
      await settled(clock, hal.spi.arm!(watcher, (r) => runs.push(Array.from(r)), { quietInterrupts: quiet }));
      chip.receiveFrame(makeFrame(OWN, PEER, 60, 1));
      await clock.advanceAsync(1);
      expect(hal.interrupt.asserted).toBe(true);
      expect(runs).toEqual([[0], [0]]); // just armed, then the edge
      expect(edges).toEqual(quiet ? [] : [true]);
      // Disarmed, the next change is heard.
      await settled(clock, hal.spi.disarm!());
      spi.bfs('ECON2', ECON2_PKTDEC);
      await clock.advanceAsync(1);
      expect(hal.interrupt.asserted).toBe(false);
      expect(edges).toEqual(quiet ? [false] : [true, false]);
    }
  });

  it('a run never splits a batch: an interrupt raised inside a batch runs the program after its last transaction, and its answer follows the batch’s', async () => {
    const clock = new VirtualClock();
    const { chip } = receivingChip(clock, { interrupts: false });
    const cycles: number[] = [];
    // Record each chip-select cycle's opcode on the way to the chip.
    const slave: SpiSlave = {
      spiSelect: () => chip.spiSelect(),
      spiExchange: (mosi) => {
        if (first) cycles.push(mosi);
        first = false;
        return chip.spiExchange(mosi);
      },
      spiDeselect: () => {
        first = true;
        chip.spiDeselect();
      },
    };
    let first = true;
    const hal = new MockHal({ clock, slave, interrupt: chip });
    const order: string[] = [];
    await settled(clock, hal.spi.arm!(RECEIVE_PROGRAM, (r) => order.push(`run:${r.length}`)));
    chip.receiveFrame(makeFrame(OWN, PEER, 60, 1)); // waits: INT is off
    cycles.length = 0;
    const ESTAT = RCR | reg('ESTAT');
    const batch = hal.spi.transfer([
      { write: b(BFS | reg('EIE'), EIE_INTIE) }, // INT asserts here: a reason to run
      { write: b(ESTAT), read: 1 },
      { write: b(ESTAT), read: 1 },
      { write: b(ESTAT), read: 1 },
    ]);
    void batch.then(() => order.push('batch'));
    await clock.advanceAsync(0);
    // Every ESTAT read still sees INT (bit 7): no run took the packet in between.
    expect(Array.from(await batch).map((estat) => estat & 0x80)).toEqual([0x80, 0x80, 0x80]);
    expect(cycles.slice(0, 4)).toEqual([BFS | reg('EIE'), ESTAT, ESTAT, ESTAT]);
    expect(cycles[4]).toBe(RCR | reg('EIR')); // then the program
    expect(order).toEqual(['run:2', 'batch', 'run:74', 'run:2']);
    expect(chip.pendingPackets).toBe(0);
  });

  it('a run whose answer is lost on the link happens on the chip but is not reported: the next run shows the gap in ERDPT', async () => {
    const { clock, chip, hal, runs, arm } = enc28j60Hal();
    await settled(clock, arm());
    hal.loseRunAnswers(1);
    const frames = [makeFrame(OWN, PEER, 70, 1), makeFrame(OWN, PEER, 90, 2)];
    for (const frame of frames) chip.receiveFrame(frame);
    await clock.advanceAsync(0);
    expect(runs.length).toBe(3); // just armed, the second frame, idle
    expectPacketRun(runs[1]!, { start: 6 + 74, frame: frames[1]!, pending: 1 });
    expectIdleRun(runs[2]);
    expect(chip.pendingPackets).toBe(0);
    expect(hal.log.entries.filter((e) => e.run).map((e) => e.error)).toEqual([undefined, 'EPROTO', undefined, undefined]);
  });

  it('while the link is lost the board keeps running the program, unheard; a board reset disarms it, a resynchronisation re-arms it', async () => {
    const { clock, chip, hal, runs, arm } = enc28j60Hal();
    await settled(clock, arm());
    hal.loseLink('unplugged');
    await expect(hal.spi.runArmed!()).rejects.toMatchObject({ code: 'ELINKLOST' });
    chip.receiveFrame(makeFrame(OWN, PEER, 60, 1));
    await clock.advanceAsync(1);
    expect(chip.pendingPackets).toBe(0);
    expect(runs.length).toBe(1);
    hal.restoreLink(false);
    await clock.advanceAsync(1);
    expect(runs.length).toBe(2); // re-armed: it looks at once
    expectIdleRun(runs[1]);
    hal.loseLink('unplugged');
    hal.restoreLink(true);
    chip.receiveFrame(makeFrame(OWN, PEER, 60, 2));
    await clock.advanceAsync(1);
    expect(runs.length).toBe(2);
    expect(chip.pendingPackets).toBe(1);
  });
});

describe('mock HAL programs: IF and LENGTH (bridge-protocol.md §3)', () => {
  it('IF on a non-zero byte runs the rest; on a zero byte it skips this and every later transaction, nothing clocked, chip-select released', async () => {
    const { clock, slave, runs, arm } = scriptedHal();
    slave.answer(5, 7, 9, 11);
    await settled(clock, arm([
      { write: b(0xa1), read: 2 },
      { write: b(0xa2), keepSelected: true },
      { write: b(0xa3), read: 1, ifNonZero: 1 },
      { write: b(0xa4), read: 1 },
    ]));
    // Run 1 read byte 1 = 7: whole, so it runs again; run 2 reads zeros and stops at the IF.
    expect(runs).toEqual([[5, 7, 9, 11], [0, 0]]);
    expect(slave.mosi).toEqual([[0xa1, 0, 0], [0xa2, 0xa3, 0], [0xa4, 0], [0xa1, 0, 0], [0xa2]]);
    expect(slave.selected).toBe(false); // 0xa2 asked to keep it; the skip released it
  });

  it('IF on a byte not read yet fails', async () => {
    const { clock, slave, runs, arm } = scriptedHal({ idle: 1 });
    await settled(clock, arm([
      { write: b(0xb1), read: 1 },
      { write: b(0xb2), read: 1, ifNonZero: 1 },
      { write: b(0xb3) },
    ]));
    expect(runs).toEqual([[1]]);
    expect(slave.mosi).toEqual([[0xb1, 0]]);
  });

  it('IF and LENGTH see the first 64 read bytes only while the board holds them: not once a 65th has been read', async () => {
    for (const readBefore of [64, 65]) {
      const { clock, slave, runs, arm } = scriptedHal();
      // Byte 0 is 1 in the first run only: a second run stops at its first IF.
      slave.answer(1);
      await settled(clock, arm([
        { write: b(0xc0), read: 1 },
        { write: b(0xc1), read: readBefore - 1, ifNonZero: 0 },
        { write: b(0xc2), read: 1, ifNonZero: 0 },
      ]));
      const held = readBefore <= 64;
      expect(slave.mosi.map((cycle) => cycle[0])).toEqual(held ? [0xc0, 0xc1, 0xc2, 0xc0] : [0xc0, 0xc1]);
      expect(runs.map((r) => r.length)).toEqual(held ? [65, 1] : [65]);
    }
  });

  it('LENGTH reads the 16-bit value at `at` (little- or big-endian), minus `minus` floored at 0, rounded up to even, capped at `read`', async () => {
    const cases: { value: [number, number]; rule: SpiTransaction['readLengthFrom']; cap?: number; expected: number }[] = [
      { value: [5, 0], rule: { at: 1 }, expected: 5 },
      { value: [0, 5], rule: { at: 1, bigEndian: true }, expected: 5 },
      { value: [0x2c, 0x01], rule: { at: 1 }, cap: 100, expected: 100 },
      { value: [7, 0], rule: { at: 1, minus: 4 }, expected: 3 },
      { value: [7, 0], rule: { at: 1, minus: 4, even: true }, expected: 4 },
      { value: [2, 0], rule: { at: 1, minus: 4, even: true }, expected: 0 },
      { value: [0, 9], rule: { at: 1, bigEndian: true, minus: 2 }, expected: 7 },
    ];
    for (const c of cases) {
      const { clock, slave, runs, arm } = scriptedHal();
      slave.answer(1, ...c.value);
      await settled(clock, arm([
        { write: b(0xd0), read: 1 },
        { write: b(0xd1), read: 2, ifNonZero: 0 },
        { write: b(0xd2), read: c.cap ?? 200, readLengthFrom: c.rule },
      ]));
      expect(runs[0]!.length, JSON.stringify(c)).toBe(3 + c.expected);
      expect(slave.mosi[2]!.length, JSON.stringify(c)).toBe(1 + c.expected);
    }
  });

  it('LENGTH on bytes not read gives 0, and the faulty program is not run again at once', async () => {
    const { clock, slave, runs, arm } = scriptedHal({ idle: 1 });
    await settled(clock, arm([
      { write: b(0xe0), read: 2 },
      { write: b(0xe1), read: 50, readLengthFrom: { at: 1 } }, // needs bytes 1 and 2
      { write: b(0xe2) },
    ]));
    expect(runs).toEqual([[1, 1]]);
    expect(slave.mosi).toEqual([[0xe0, 0, 0], [0xe1], [0xe2]]);
  });

  it('transfer() refuses IF and LENGTH: they are for programs only', async () => {
    const { hal } = scriptedHal();
    await expect(hal.spi.transfer([{ read: 1 }, { write: b(1), ifNonZero: 0 }])).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(hal.spi.transfer([{ read: 2 }, { read: 9, readLengthFrom: { at: 0 } }])).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('mock HAL programs: what the board takes', () => {
  /** 64 bytes with SHORT headers (3 + 10 + 3 × 17), or 65 with `extra`. */
  const program = (extra = 0): SpiTransaction[] => [
    { write: b(0xf0), read: 1 },
    { write: new Uint8Array(7 + extra), ifNonZero: 0 },
    { write: new Uint8Array(15) },
    { write: new Uint8Array(15) },
    { write: new Uint8Array(15) },
  ];

  it('takes programs of up to 64 encoded bytes by default and refuses a larger one with EINVAL', async () => {
    const { clock, hal, runs, arm } = scriptedHal();
    expect(hal.spi.maxProgramBytes).toBe(64);
    expect(transactionsLength(program(), { shortHeaders: true })).toBe(64);
    await settled(clock, arm(program()));
    expect(runs).toEqual([[0]]);
    const tooLarge = arm(program(1));
    await expect(tooLarge).rejects.toBeInstanceOf(HalError);
    await expect(tooLarge).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(arm([])).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(arm([{ read: 1 }, { read: 1, ifNonZero: 64 }])).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('takes the board’s limit from an option: the receive program needs 35 bytes', async () => {
    const fits = scriptedHal({ maxProgramBytes: 35 });
    await expect(settled(fits.clock, fits.arm(RECEIVE_PROGRAM))).resolves.toBeUndefined();
    const small = scriptedHal({ maxProgramBytes: 34 });
    expect(small.hal.spi.maxProgramBytes).toBe(34);
    await expect(small.arm(RECEIVE_PROGRAM)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('a board without programs (maxProgramBytes 0) refuses arm and runArmed with EUNSUPPORTED; disarm has nothing to do', async () => {
    const { clock, hal, arm, slave } = scriptedHal({ maxProgramBytes: 0 });
    expect(hal.spi.maxProgramBytes).toBe(0);
    await expect(arm(program())).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
    await expect(hal.spi.runArmed!()).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
    await expect(settled(clock, hal.spi.disarm!())).resolves.toBeUndefined();
    expect(slave.cycles).toEqual([]);
  });
});

describe('mock HAL programs over a link model', () => {
  // 1 ms per byte each way, 1 ms each way of turnaround, 0.5 ms per SPI byte; a 1-byte DONE.
  const LINK: LinkModel = {
    bytesPerSecond: 1000,
    turnaroundMs: 2,
    batchOverheadBytes: 0,
    transactionOverheadBytes: 0,
    replyOverheadBytes: 1,
    spiBytesPerSecond: 2000,
  };
  /** Reads one byte (0 here) and stops at its IF: 2 SPI bytes, a 2-byte answer. */
  const WATCH: SpiTransaction[] = [
    { write: b(0x01), read: 1 },
    { write: b(0x02), read: 1, ifNonZero: 0 },
  ];

  it('a run needs no request: its answer arrives its SPI time, line time and half the turnaround after the board starts it; it goes between batches, before one that has not fully arrived, after one that has', async () => {
    const pin = new PinSource();
    const { clock, slave, hal } = scriptedHal({ linkModel: LINK, interrupt: pin });
    const seen: string[] = [];
    const when = (what: string) => () => seen.push(`${what}@${clock.now()}`);
    // ARM: 2 bytes up (0–2), arrives at 3; its DONE 3–4, at the host at 5. The just-armed run:
    // chip 3–4, answer (1 byte + DONE) 4–6, at the host at 7.
    void hal.spi.arm!(WATCH, when('run')).then(when('armed'));
    await clock.advanceAsync(10);
    // A, B, C go up back to back: A arrives at 21 (chip 21–26), B at 31 (chip 31–46), C at 41.
    void hal.spi.transfer([{ write: new Uint8Array(10).fill(0xa0) }]).then(when('A'));
    void hal.spi.transfer([{ write: new Uint8Array(10).fill(0xb0), read: 20 }]).then(when('B'));
    void hal.spi.transfer([{ write: new Uint8Array(10).fill(0xc0) }]).then(when('C'));
    // An edge while A runs: at 26 B has not arrived, so the run goes first (26–27), answer 27–29, at 30.
    clock.schedule(12, () => pin.set(true));
    clock.schedule(13, () => pin.set(false));
    // An edge while B runs: C has arrived by 46, so C goes first (46–51), then the run (51–52),
    // its answer after B's 21 bytes and C's DONE on the line (68–70), at 71.
    clock.schedule(25, () => pin.set(true));
    await clock.advanceAsync(100);
    expect(slave.cycles.map((c) => `${c.mosi[0]!.toString(16)}@${c.at}`)).toEqual(['1@3', 'a0@26', '1@26', 'b0@46', 'c0@51', '1@51']);
    expect(seen).toEqual(['armed@5', 'run@7', 'A@28', 'run@30', 'B@68', 'C@69', 'run@71']);
    // Runs send nothing up: 2 (ARM) + 3 × 10 bytes.
    expect(hal.log.totals).toMatchObject({ batches: 3, runs: 3, programCommands: 1, roundTrips: 4, linkBytesUp: 32 });
    expect(hal.log.totals.linkBytesDown).toBe(1 + 3 * 2 + 1 + 21 + 1);
  });

  it('disarm() resolves after the answers of runs that happened before it; then edges run nothing', async () => {
    const pin = new PinSource();
    const { clock, hal } = scriptedHal({ linkModel: LINK, interrupt: pin });
    const seen: string[] = [];
    const armed = hal.spi.arm!(WATCH, () => seen.push(`run@${clock.now()}`));
    await clock.advanceAsync(20);
    await armed;
    seen.length = 0;
    const start = clock.now();
    // The edge starts a run at once (chip +0–1, answer +1–3, at +4); DISARM arrives at +1,
    // waits for the chip, answers +3–4, at +5.
    pin.set(true);
    void hal.spi.disarm!().then(() => seen.push(`disarmed@${clock.now()}`));
    await clock.advanceAsync(20);
    pin.set(false);
    pin.set(true);
    await clock.advanceAsync(20);
    expect(seen).toEqual([`run@${start + 4}`, `disarmed@${start + 5}`]);
  });
});
