/**
 * Bridge protocol version 2 through the host HAL: SHORT headers, programs (arm / disarm /
 * runArmed, docs/bridge-protocol.md §3.2) and the fallback to version-1 boards, against the
 * TypeScript board model with an SPI memory chip whose INT line the test drives.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/time/random.js';
import { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import type { HalEvent, SpiTransaction } from '../../src/drivers/hal.js';
import { BoardFrame, Command, FrameDecoder, encodeSpiCommand, hostWireBytes, parseBoardFrame } from '../../hal/bridge/protocol.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { closeModelHal, openModelHal, type ModelHal, type ModelHalOptions } from './model-hal.js';

interface Setup extends ModelHal {
  /** Board → host frames as the host received them, by type. */
  framesSeen: Map<number, number>;
}

let current: Setup | undefined;

async function setup(options: ModelHalOptions = {}): Promise<Setup> {
  const base = await openModelHal(options);
  const framesSeen = new Map<number, number>();
  const decoder = new FrameDecoder((body) => {
    const type = parseBoardFrame(body)!.type;
    framesSeen.set(type, (framesSeen.get(type) ?? 0) + 1);
  });
  base.link.onHostData((bytes) => decoder.push(bytes));
  current = { ...base, framesSeen };
  return current;
}

afterEach(async () => {
  await closeModelHal(current);
  current = undefined;
});

/** Wait on the HAL's (virtual) clock until `condition` holds. */
async function until(hal: BridgeHal, condition: () => boolean, stepMs = 1, limitMs = 5_000): Promise<void> {
  for (let waited = 0; !condition(); waited += stepMs) {
    if (waited > limitMs) throw new Error('condition not met in time');
    await hal.delay(stepMs);
  }
}

const readAt = (address: number, n: number): SpiTransaction => ({ write: Uint8Array.of(0x03, address), read: n });
const writeAt = (address: number, ...data: number[]): SpiTransaction => ({ write: Uint8Array.of(0x02, address, ...data) });

/**
 * A receive program in the ENC28J60's manner, on the memory chip: byte 0 says a packet waits,
 * bytes 1–2 are its length (little-endian), the packet is at 0x10. A run reads the flag and the
 * length, stops there when no packet waits (IF), else reads the packet (LENGTH, at most 32 bytes)
 * and clears the flag (the ENC28J60's PKTDEC).
 */
const RX_PROGRAM: SpiTransaction[] = [
  readAt(0x00, 3),
  { write: Uint8Array.of(0x03, 0x10), read: 32, ifNonZero: 0, readLengthFrom: { at: 1 } },
  writeAt(0x00, 0),
];

/**
 * Arm RX_PROGRAM: its runs and the HAL's events (from now on) collect in the arrays returned.
 * `firstRun`: wait for the run that arming starts (nothing waits yet: a short one).
 */
async function armRx(hal: BridgeHal, firstRun = true): Promise<{ runs: number[][]; events: HalEvent[] }> {
  const events: HalEvent[] = [];
  hal.onEvent((e) => events.push(e));
  const runs: number[][] = [];
  await hal.spi.arm!(RX_PROGRAM, (bytes) => runs.push([...bytes]));
  if (firstRun) await until(hal, () => runs.length === 1);
  return { runs, events };
}

/** What the chip would hold with `packet` waiting. */
function post(chip: SpiMemoryChip, packet: number[]): void {
  chip.memory.set(packet, 0x10);
  chip.memory.set([1, packet.length & 0xff, packet.length >>> 8], 0);
}

/** The run that found `packet`, and the one after it that found none. */
const took = (packet: number[]) => [[1, packet.length, 0, ...packet.slice(0, 32)], [0, packet.length, 0]];
const nothing = (lastLength = 0) => [0, lastLength, 0];

describe('bridge HAL, protocol version 2: short headers', () => {
  it('given a version-2 board, sends SHORT transaction headers: fewer bytes on the wire, the same answers', async () => {
    const batch = Array.from({ length: 20 }, (_, k) => readAt(k, 1));
    const results: Uint8Array[] = [];
    const sent: number[] = [];
    for (const protocolVersion of [1, 2] as const) {
      const { hal, chip } = await setup({ protocolVersion });
      chip.memory.set(Array.from({ length: 20 }, (_, k) => 100 + k), 0);
      const before = hal.stats.bytesSent;
      results.push(await hal.spi.transfer(batch));
      sent.push(hal.stats.bytesSent - before);
      await hal.close();
      current!.driver.stop();
      current = undefined;
    }
    expect([...results[1]!]).toEqual([...results[0]!]);
    expect([...results[1]!]).toEqual(Array.from({ length: 20 }, (_, k) => 100 + k));
    // Long headers to the version-1 board, short ones (3 bytes less each) to the version-2 board.
    expect(sent[0]).toBe(hostWireBytes(encodeSpiCommand(0, batch).length));
    expect(sent[1]).toBe(hostWireBytes(encodeSpiCommand(0, batch, { shortHeaders: true }).length));
    expect(sent[0]! - sent[1]!).toBeGreaterThanOrEqual(20 * 3);
  });

  it('refuses ifNonZero and readLengthFrom in transfer(): they are for programs', async () => {
    const { hal } = await setup();
    await expect(hal.spi.transfer([readAt(0, 1), { read: 1, ifNonZero: 0 }])).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(hal.spi.transfer([readAt(0, 2), { read: 9, readLengthFrom: { at: 0 } }])).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('bridge HAL, protocol version 2: programs', () => {
  it('given an armed program, it runs once when armed and again on each INT edge until a run is cut short by IF', async () => {
    const { hal, chip, board } = await setup();
    expect(hal.spi.maxProgramBytes).toBe(64);
    const { runs } = await armRx(hal, false);
    expect(board.armed).toMatchObject({ length: 19 });
    await until(hal, () => runs.length === 1);
    expect(runs).toEqual([nothing()]);
    const packet = [0xde, 0xad, 0xbe, 0xef, 0x01];
    post(chip, packet);
    chip.setInterrupt(true);
    await until(hal, () => runs.length === 3);
    expect(runs.slice(1)).toEqual(took(packet));
    await hal.delay(20);
    expect(runs.length).toBe(3);
    expect(hal.stats).toMatchObject({ runsReported: 3, runsLost: 0 });
  });

  it('delivers runs in order with transfer() answers: a run the board made between two batches arrives before the second resolves', async () => {
    const { hal, chip } = await setup();
    const { runs } = await armRx(hal);
    // INT stays asserted: the board runs the program after each batch that ends with it so.
    chip.setInterrupt(true);
    await until(hal, () => runs.length === 2);
    const packet = [1, 2, 3, 4, 5, 6, 7];
    const first = hal.spi.transfer([writeAt(0x10, ...packet), writeAt(0x00, 1, packet.length, 0)]);
    const second = hal.spi.transfer([readAt(0x10, 2)]);
    let runsWhenSecondResolved: number[][] = [];
    void second.then(() => (runsWhenSecondResolved = runs.map((r) => r)));
    await Promise.all([first, second]);
    expect(runsWhenSecondResolved.slice(2, 3)).toEqual([took(packet)[0]]);
    expect([...(await second)]).toEqual([1, 2]);
  });

  it('given IF on a zero byte, a run stops there: it reads only what came before and clocks nothing after', async () => {
    const { hal, chip } = await setup();
    const { runs } = await armRx(hal);
    const selects = chip.selects;
    await hal.spi.runArmed!();
    expect(runs.slice(1)).toEqual([nothing()]);
    expect(chip.selects - selects).toBe(1);
    post(chip, [9]);
    await hal.spi.runArmed!();
    await until(hal, () => runs.length === 4);
    expect(runs.slice(2)).toEqual(took([9]));
    // The run that took the packet selected the chip three times; the one after it, once.
    expect(chip.selects - selects).toBe(1 + 3 + 1);
  });

  it('given LENGTH, a run reads as many bytes as the length it read says, capped at the transaction\'s read', async () => {
    const { hal, chip } = await setup();
    const { runs } = await armRx(hal, false);
    const short = [10, 11, 12];
    const long = Array.from({ length: 40 }, (_, i) => i + 1);
    await until(hal, () => runs.length === 1);
    post(chip, short);
    await hal.spi.runArmed!();
    await until(hal, () => runs.length === 3);
    expect(runs[1]).toEqual([1, 3, 0, 10, 11, 12]);
    post(chip, long);
    await hal.spi.runArmed!();
    await until(hal, () => runs.length === 5);
    expect(runs[3]).toEqual([1, 40, 0, ...long.slice(0, 32)]);
  });

  it('runArmed() runs the program now, for a packet no edge announced, and resolves after its answer', async () => {
    const { hal, chip, commands } = await setup();
    const { runs } = await armRx(hal);
    const packet = [0x42, 0x43];
    post(chip, packet);
    await hal.delay(20);
    expect(runs.length).toBe(1);
    await hal.spi.runArmed!();
    expect(runs.slice(1, 2)).toEqual([took(packet)[0]]);
    expect(commands.filter((c) => c === Command.RUN).length).toBe(1);
  });

  it('disarm() resolves after the runs before it were delivered; then INT edges run nothing', async () => {
    const { hal, chip, board } = await setup();
    const { runs } = await armRx(hal);
    const packet = [5, 4, 3];
    post(chip, packet);
    chip.setInterrupt(true);
    await hal.spi.disarm!();
    expect(runs.slice(1)).toEqual(took(packet));
    expect(board.armed).toBeUndefined();
    post(chip, [1]);
    chip.setInterrupt(false);
    chip.setInterrupt(true);
    await hal.delay(50);
    expect(runs.length).toBe(3);
    expect(chip.memory[0]).toBe(1);
    // Its id is free again: requests keep working.
    expect((await hal.spi.transfer([readAt(0, 1)]))[0]).toBe(1);
  });

  it('arming again replaces the program; the runs of each arrive under its own id', async () => {
    const { hal, chip, board } = await setup();
    const first: number[][] = [];
    const second: number[][] = [];
    await hal.spi.arm!(RX_PROGRAM, (bytes) => first.push([...bytes]));
    const firstId = board.armed!.id;
    await hal.spi.arm!([readAt(0x00, 1), { ...readAt(0x20, 1), ifNonZero: 0 }], (bytes) => second.push([...bytes]));
    expect(board.armed!.id).not.toBe(firstId);
    chip.memory[0x20] = 0x77;
    post(chip, [1, 2]);
    await hal.spi.runArmed!();
    expect(second.at(-1)).toEqual([1, 0x77]);
    expect(first).toEqual([nothing()]);
  });

  it('keeps the program\'s id out of use while armed: after the request ids wrap, replies are still replies and runs still runs', async () => {
    const { hal, chip } = await setup();
    const { runs } = await armRx(hal, false);
    chip.memory.set([0x5a], 0x40);
    const replies = await Promise.all(Array.from({ length: 300 }, () => hal.spi.transfer([readAt(0x40, 1)])));
    expect(replies.every((r) => r.length === 1 && r[0] === 0x5a)).toBe(true);
    expect(runs).toEqual([nothing()]);
    post(chip, [8]);
    await hal.spi.runArmed!();
    expect(runs[1]).toEqual(took([8])[0]);
    expect(hal.stats).toMatchObject({ lostReplies: 0, runsLost: 0 });
  });

  it('with quietInterrupts, the board sends no INT events while armed; the INT level still rides on every frame', async () => {
    const { hal, chip, framesSeen } = await setup();
    const runs: number[][] = [];
    await hal.spi.arm!(RX_PROGRAM, (bytes) => runs.push([...bytes]), { quietInterrupts: true });
    const events = framesSeen.get(BoardFrame.EVENT) ?? 0;
    post(chip, [1, 2, 3]);
    chip.setInterrupt(true);
    await until(hal, () => runs.length === 3);
    await hal.delay(20);
    expect(framesSeen.get(BoardFrame.EVENT) ?? 0).toBe(events);
    expect(hal.interrupt.asserted).toBe(true);
    // Disarmed, the board reports the line again.
    await hal.spi.disarm!();
    chip.setInterrupt(false);
    await until(hal, () => (framesSeen.get(BoardFrame.EVENT) ?? 0) > events);
    expect(hal.interrupt.asserted).toBe(false);
  });

  it('without quietInterrupts, INT events still come while armed', async () => {
    const { hal, chip, framesSeen } = await setup();
    await armRx(hal, false);
    const events = framesSeen.get(BoardFrame.EVENT) ?? 0;
    chip.setInterrupt(true);
    await until(hal, () => (framesSeen.get(BoardFrame.EVENT) ?? 0) > events);
  });

  it('refuses, before sending anything, a program larger than the board takes, or one that refers to bytes a run may not hold', async () => {
    const { hal, commands } = await setup();
    const onRun = () => {};
    const big = Array.from({ length: 6 }, () => writeAt(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    await expect(hal.spi.arm!(big, onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(hal.spi.arm!([{ ...readAt(0, 1), ifNonZero: 0 }], onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(hal.spi.arm!([readAt(0, 1), { read: 8, readLengthFrom: { at: 0 } }], onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    // Bytes after a LENGTH transaction have no fixed place.
    await expect(hal.spi.arm!([readAt(0, 2), { read: 8, readLengthFrom: { at: 0 } }, readAt(0, 2), { read: 1, ifNonZero: 3 }], onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    // Nor any once a run may have read more than 64 bytes: the board no longer holds the first ones.
    await expect(hal.spi.arm!([readAt(0, 65), { read: 1, ifNonZero: 0 }], onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(hal.spi.arm!([readAt(0, 2), { read: 63, readLengthFrom: { at: 0 } }, { read: 1, ifNonZero: 1 }], onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(hal.spi.arm!([], onRun)).rejects.toMatchObject({ code: 'EINVAL' });
    await hal.ping();
    expect(commands).not.toContain(Command.ARM);
  });

  it('given a run\'s answer corrupted on the link, drops that run — counted when its DONE survives (a long answer), a bad frame when the whole answer was one ended frame; the next run still arrives', async () => {
    const { hal, chip, link } = await setup();
    const program = [RX_PROGRAM[0]!, { ...RX_PROGRAM[1]!, read: 200 }, RX_PROGRAM[2]!];
    const runs: number[][] = [];
    await hal.spi.arm!(program, (bytes) => runs.push([...bytes]), { quietInterrupts: true });
    await until(hal, () => runs.length === 1);
    // 150 bytes: two DATA frames, the second ended with the DONE. The first is corrupted.
    const long = Array.from({ length: 150 }, (_, i) => (i * 7 + 1) & 0xff);
    post(chip, long);
    link.corruptNext('board-to-host', 1, 3);
    chip.setInterrupt(true);
    await until(hal, () => hal.stats.runsLost + hal.stats.runsReported === 3);
    expect(hal.stats.runsLost).toBe(1);
    expect(runs).toEqual([nothing(), nothing(long.length)]);
    // A short answer is one ended frame: corrupted, nothing of that run arrives but a bad frame.
    const badBefore = hal.stats.badFrames;
    const short = [0xaa, 0xbb, 0xcc, 0xdd];
    post(chip, short);
    link.corruptNext('board-to-host', 1, 3);
    chip.setInterrupt(false);
    chip.setInterrupt(true);
    await until(hal, () => hal.stats.badFrames > badBefore && runs.length === 3);
    expect(hal.stats.runsLost).toBe(1);
    expect(runs[2]).toEqual(nothing(short.length));
    const packet = [0x11, 0x22];
    post(chip, packet);
    chip.setInterrupt(false);
    await until(hal, () => runs.length === 5);
    expect(runs.slice(3)).toEqual(took(packet));
  });

  it('after a resync with a board that did not reset, it re-arms by itself before any other command', async () => {
    const { hal, chip, board, link, commands } = await setup();
    const { runs, events } = await armRx(hal);
    const armedId = board.armed!.id;
    // The board → host line goes dead: replies stop, the HAL probes, then says HELLO. The line
    // is back before the board answers that HELLO (one answered HELLO: no sign of a reset).
    link.setFaults('board-to-host', { drop: 1, random: new SeededRandom(3) });
    const unanswered = hal.spi.transfer([readAt(0, 1)]).catch(() => undefined);
    await until(hal, () => hal.stats.resyncs === 1, 0.1);
    link.setFaults('board-to-host', undefined);
    const seen = commands.length;
    const queued = hal.spi.transfer([readAt(0x10, 1)]);
    await until(hal, () => hal.ready);
    await queued;
    await unanswered;
    // The HELLO disarmed the board; the HAL armed it again first thing.
    expect(commands.slice(seen)[0]).toBe(Command.ARM);
    expect(commands.slice(seen)).toContain(Command.SPI);
    expect(board.armed).toBeDefined();
    expect(board.armed!.id).not.toBe(armedId);
    const packet = [3, 1, 4, 1, 5];
    post(chip, packet);
    chip.setInterrupt(true);
    await until(hal, () => runs.at(-1)?.[0] === 0 && runs.some((r) => r[0] === 1));
    expect(runs.filter((r) => r[0] === 1)).toEqual([took(packet)[0]]);
    expect(events).toEqual([]);
  });

  it('after a reconnect whose first HELLO replies were lost, it still knows the board did not reset (and re-arms)', async () => {
    const { hal, board, link } = await setup({ resetOnOpen: false });
    const { runs, events } = await armRx(hal);
    link.vanish();
    await expect(hal.spi.runArmed!()).rejects.toMatchObject({ code: 'ELINKLOST' });
    // The board answers the first HELLO after the port is back (its session count goes up), but
    // the answer never reaches the host; the HAL asks again.
    link.dropNext('board-to-host', 60);
    link.reappear();
    await until(hal, () => events.length === 2);
    expect(events).toEqual([{ type: 'link-lost', reason: expect.any(String) }, { type: 'link-restored', boardReset: false }]);
    await until(hal, () => runs.length === 2);
    expect(board.armed).toBeDefined();
  });

  it('after a reconnect to a board that did not reset, it re-arms too; port loss fails arm, disarm and runArmed with ELINKLOST', async () => {
    const { hal, board, link } = await setup({ resetOnOpen: false });
    const { runs, events } = await armRx(hal);
    link.vanish();
    await expect(hal.spi.runArmed!()).rejects.toMatchObject({ code: 'ELINKLOST' });
    await expect(hal.spi.disarm!()).rejects.toMatchObject({ code: 'ELINKLOST' });
    await expect(hal.spi.arm!(RX_PROGRAM, () => {})).rejects.toMatchObject({ code: 'ELINKLOST' });
    link.reappear();
    await until(hal, () => events.length === 2);
    expect(events).toEqual([{ type: 'link-lost', reason: expect.any(String) }, { type: 'link-restored', boardReset: false }]);
    // Re-armed: the board runs it at once.
    await until(hal, () => runs.length === 2);
    expect(board.armed).toBeDefined();
    await hal.spi.runArmed!();
    expect(runs).toEqual([nothing(), nothing(), nothing()]);
  });

  it('after a board reset it stays disarmed (the driver re-arms after re-initialising the chip)', async () => {
    const { hal, chip, board, commands } = await setup();
    const { runs, events } = await armRx(hal);
    board.reboot();
    await until(hal, () => events.length === 2);
    expect(events).toEqual([{ type: 'link-lost', reason: 'board reset' }, { type: 'link-restored', boardReset: true }]);
    const armsBefore = commands.filter((c) => c === Command.ARM).length;
    post(chip, [1, 2]);
    chip.setInterrupt(true);
    await hal.ping();
    await hal.delay(20);
    expect(board.armed).toBeUndefined();
    expect(runs.length).toBe(1);
    expect(commands.filter((c) => c === Command.ARM).length).toBe(armsBefore);
    // Arming again works as before.
    await hal.spi.arm!(RX_PROGRAM, (bytes) => runs.push([...bytes]));
    await until(hal, () => runs.length === 3);
    expect(runs.slice(1)).toEqual(took([1, 2]));
  });
});

describe('bridge HAL against a version-1 board', () => {
  it('says it runs no programs: arm rejects EUNSUPPORTED, disarm and runArmed have nothing to do, transfers work', async () => {
    const { hal, commands, chip } = await setup({ protocolVersion: 1 });
    expect(hal.hello).toMatchObject({ version: 1, programBytes: 0 });
    expect(hal.spi.maxProgramBytes).toBe(0);
    await expect(hal.spi.arm!(RX_PROGRAM, () => {})).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
    await hal.spi.disarm!();
    await hal.spi.runArmed!();
    chip.memory.set([7, 8, 9], 0x30);
    expect([...(await hal.spi.transfer([readAt(0x30, 3), { write: Uint8Array.of(0x55), duplex: true }]))]).toEqual([7, 8, 9, 0x00]);
    expect(commands).toEqual([Command.SPI]);
    expect(hal.stats.resyncs).toBe(0);
  });
});
