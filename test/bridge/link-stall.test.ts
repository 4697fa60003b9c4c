/**
 * A host that stops reading: the Uno's 16U2 keeps 64 bytes in its IN bank and 128 in its ring and
 * loses the rest (boards/sim/serial-link.ts), and the protocol recovers — program runs lost on the
 * way are counted and dropped, requests are retried, and the credit comes back whole.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import type { SpiTransaction } from '../../src/drivers/hal.js';
import { LINK_MODELS, SerialLink, type LinkTarget } from '../../boards/sim/serial-link.js';
import { createSimulatedBoard, type SimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';

/** A board side that sends what the test tells it to. */
function fakeBoard(): LinkTarget & { send(bytes: number[]): void } {
  const listeners = new Set<(bytes: Uint8Array) => void>();
  return {
    open: () => {},
    write: () => {},
    onData: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    send: (bytes) => {
      for (const listener of listeners) listener(Uint8Array.from(bytes));
    },
  };
}

describe('the 16U2 link model when the host stalls', () => {
  it('given a host that reads, delivers every byte in order', () => {
    const clock = new VirtualClock();
    const board = fakeBoard();
    const link = new SerialLink(clock, board, LINK_MODELS['16u2']);
    const got: number[] = [];
    link.onHostData((bytes) => got.push(...bytes));
    for (let i = 0; i < 500; i++) {
      board.send([i & 0xff]);
      clock.advance(0.01); // 1 Mbaud
    }
    clock.advance(10);
    expect(got).toEqual(Array.from({ length: 500 }, (_, i) => i & 0xff));
    expect(link.stats.overflowed).toBe(0);
  });

  it('given a host that stalls for 50 ms, keeps the IN bank, the byte in hand and the last 128 of the ring, and loses the rest', () => {
    const clock = new VirtualClock();
    const board = fakeBoard();
    const link = new SerialLink(clock, board, LINK_MODELS['16u2']);
    const got: number[] = [];
    link.onHostData((bytes) => got.push(...bytes));
    link.stallHost(50);
    for (let i = 0; i < 500; i++) {
      board.send([i & 0xff]);
      clock.advance(0.01);
    }
    clock.advance(60);
    const sent = Array.from({ length: 500 }, (_, i) => i & 0xff);
    // The bank took the first 64 bytes, the firmware holds the 65th, the ring the last 128 sent.
    expect(got).toEqual([...sent.slice(0, 65), ...sent.slice(372)]);
    expect(link.stats.overflowed).toBe(500 - got.length);
  });

  it('given a stall longer than the firmware waits for the bank, drops the byte in hand too', () => {
    const clock = new VirtualClock();
    const board = fakeBoard();
    const link = new SerialLink(clock, board, LINK_MODELS['16u2']);
    const got: number[] = [];
    link.onHostData((bytes) => got.push(...bytes));
    link.stallHost(150);
    for (let i = 0; i < 200; i++) {
      board.send([i]);
      clock.advance(0.01);
    }
    clock.advance(200);
    expect(got.slice(0, 64)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(got).not.toContain(64);
    expect(link.stats.overflowed).toBeGreaterThanOrEqual(2);
  });
});

let board: SimulatedBoard | undefined;
let hal: BridgeHal | undefined;

afterEach(async () => {
  await hal?.close();
  await board?.stop();
  board = hal = undefined;
});

const readAt = (address: number, n: number): SpiTransaction => ({ write: Uint8Array.of(0x03, address), read: n });
const writeAt = (address: number, ...data: number[]): SpiTransaction => ({ write: Uint8Array.of(0x02, address, ...data) });
/** A receive program on the memory chip (as in hal-programs.test.ts): flag, length, packet. */
const RX_PROGRAM: SpiTransaction[] = [
  readAt(0x00, 3),
  { write: Uint8Array.of(0x03, 0x10), read: 64, ifNonZero: 0, readLengthFrom: { at: 1 } },
  writeAt(0x00, 0),
];

describe('the protocol across a host stall (the sketch in avr8js behind the 16U2 model)', () => {
  it('loses program runs and replies while the host stalls, counts them, and works on with the whole credit', async () => {
    const clock = new VirtualClock();
    const chip = new SpiMemoryChip();
    board = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel: '16u2' });
    hal = await board.openHal({ isRetryable: () => true });
    const runs: number[][] = [];
    await hal.spi.arm!(RX_PROGRAM, (bytes) => runs.push([...bytes]));
    // A packet every 2 ms, each announced by an INT edge: 60-byte runs, ≈ 32 kB/s towards the host.
    let posted = 0;
    let posting = true;
    const postedAt: number[] = [];
    const post = () => {
      if (!posting) return;
      posted++;
      postedAt[posted] = clock.now();
      const packet = Array.from({ length: 60 }, (_, i) => (posted + i) & 0xff);
      chip.memory.set(packet, 0x10);
      chip.memory.set([1, packet.length, 0], 0);
      chip.setInterrupt(true);
      chip.setInterrupt(false);
      clock.schedule(2, post);
    };
    post();
    const pings = [hal.ping()];
    await hal.delay(20);
    const stallEnds = clock.now() + 60;
    board.faults.stallHost(60);
    // Requests made while the host cannot read: their replies may be lost, and they are retried.
    for (let i = 0; i < 5; i++) pings.push(hal.ping());
    await hal.delay(200);
    posting = false;
    await hal.delay(20);
    for (const ping of await Promise.all(pings)) expect(ping).toBeGreaterThan(0);
    expect(board.link.stats.overflowed).toBeGreaterThan(0);
    // The pings whose replies the stall ate were asked again.
    expect(hal.stats.lostReplies).toBeGreaterThan(0);
    expect(hal.stats.retries).toBeGreaterThan(0);
    // Every run the host took is one the board made, whole; a run cut by the stall was dropped.
    const delivered = new Set<number>();
    for (const run of runs) {
      if (run[0] === 0) continue;
      expect(run.length).toBe(3 + 60);
      expect(run.slice(3)).toEqual(Array.from({ length: 60 }, (_, i) => (run[3]! + i) & 0xff));
      delivered.add(run[3]!);
    }
    const lost = postedAt.flatMap((at, id) => (delivered.has(id) ? [] : [at]));
    expect(lost.length).toBeGreaterThan(0);
    // What was lost was sent while the host stalled (and the 16U2 caught up); everything after came.
    for (const at of lost) expect(at).toBeLessThan(stallEnds + 5);
    // The credit is whole again: the board's ring is empty and a window's worth of writes goes through.
    expect(await hal.ping()).toBe(hal.hello!.window);
    const block = Uint8Array.from({ length: 900 }, (_, i) => i & 0xff);
    await Promise.all([0, 1, 2].map(() => hal!.spi.transfer([{ write: Uint8Array.of(0x55, ...block) }])));
    expect(hal.stats.peakCreditUsed).toBeLessThanOrEqual(hal.hello!.window);
  });
});
