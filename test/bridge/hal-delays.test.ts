/**
 * Transaction delays through the host HAL (SpiTransaction.delayUs, flag DELAY, caps bit 11;
 * docs/bridge-protocol.md §3): the HAL offers them only on a board that says it keeps them, refuses
 * them elsewhere before anything is sent, and gives a delayed batch the time it takes. The board
 * model for what is sent; the real sketch in avr8js for the time it takes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import type { SpiTransaction } from '../../src/drivers/hal.js';
import { Command } from '../../hal/bridge/protocol.js';
import { SimulatedBinding } from '../../boards/sim/binding.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { ModelBoard } from '../../boards/sim/model-board.js';
import { LINK_MODELS, SerialLink } from '../../boards/sim/serial-link.js';
import { driveVirtualClock } from '../../boards/sim/virtual-time.js';
import { createSimulatedBoard, type SimulatedBoard } from '../../boards/sim/index.js';

const PATH = '/dev/ttySIM0';
const WRITE = 0x02;
const READ = 0x03;
const writeAt = (address: number, data: number[], more: Partial<SpiTransaction> = {}): SpiTransaction => ({ write: Uint8Array.of(WRITE, address, ...data), ...more });
const readAt = (address: number, count: number): SpiTransaction => ({ write: Uint8Array.of(READ, address), read: count });

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function withModelBoard(options: { protocolVersion?: 1 | 2; transactionDelays?: boolean } = {}) {
  const clock = new VirtualClock();
  const chip = new SpiMemoryChip();
  const commands: number[] = [];
  const board = new ModelBoard({ clock, chip, ...options, onCommand: (opcode) => commands.push(opcode) });
  const link = new SerialLink(clock, board, LINK_MODELS['16u2']);
  const binding = new SimulatedBinding();
  binding.register(PATH, link);
  const driver = driveVirtualClock(clock);
  const hal = await BridgeHal.open({ path: PATH, binding, clock, baudRate: 1_000_000 });
  cleanups.push(async () => {
    await hal.close();
    driver.stop();
  });
  return { hal, chip, commands };
}

describe('bridge HAL: transaction delays on the board model', () => {
  it('given a board whose HELLO says caps bit 11, offers delays and sends them: the batch runs', async () => {
    const { hal, chip } = await withModelBoard();
    expect(hal.spi.transactionDelays).toBe(true);
    const result = await hal.spi.transfer([writeAt(0x40, [0xa1]), writeAt(0x41, [0xb2], { delayUs: 500 }), readAt(0x40, 2)]);
    expect([...result]).toEqual([0xa1, 0xb2]);
    expect([...chip.memory.subarray(0x40, 0x42)]).toEqual([0xa1, 0xb2]);
  });

  it('given a board without caps bit 11 (version 2 before it, or version 1), offers none and refuses a delay with EUNSUPPORTED before sending', async () => {
    for (const options of [{ transactionDelays: false }, { protocolVersion: 1 as const }]) {
      const { hal, chip, commands } = await withModelBoard(options);
      expect(hal.spi.transactionDelays).toBe(false);
      const sent = hal.stats.bytesSent;
      await expect(hal.spi.transfer([writeAt(0x40, [0xa1]), writeAt(0x41, [0xb2], { delayUs: 500 })])).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
      expect(hal.stats.bytesSent).toBe(sent);
      expect(commands.filter((c) => c === Command.SPI)).toEqual([]);
      expect(chip.memory[0x40]).toBe(0);
      // delayUs 0 is no delay: the batch goes as before.
      await hal.spi.transfer([writeAt(0x40, [0xa1], { delayUs: 0 })]);
      expect(chip.memory[0x40]).toBe(0xa1);
    }
  });

  it('refuses a delay the header cannot carry with EINVAL', async () => {
    const { hal } = await withModelBoard();
    for (const delayUs of [-1, 1.5, 65_536]) {
      await expect(hal.spi.transfer([writeAt(0x40, [1], { delayUs })])).rejects.toMatchObject({ code: 'EINVAL' });
    }
  });
});

describe('bridge HAL: transaction delays on the real sketch', () => {
  it('waits out a batch whose delays outlast the request timeout and the resend timer: 20 × 60 ms, no resend, no resync', async () => {
    const clock = new VirtualClock();
    const chip = new SpiMemoryChip();
    const board: SimulatedBoard = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel: 'ideal' });
    // The board acknowledges a frame only once it has executed it: 1.2 s without an ACK.
    const hal = await board.openHal({ requestTimeoutMs: 20 });
    cleanups.push(async () => {
      await hal.close();
      await board.stop();
    });
    expect(hal.spi.transactionDelays).toBe(true);
    const batch = Array.from({ length: 20 }, (_, i) => writeAt(i, [i + 1], { delayUs: 60_000 }));
    const start = clock.now();
    await hal.spi.transfer(batch);
    expect(clock.now() - start).toBeGreaterThanOrEqual(20 * 60);
    expect([...chip.memory.subarray(0, 20)]).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(hal.stats).toMatchObject({ retransmittedFrames: 0, timeouts: 0, resyncs: 0 });
  });
});
