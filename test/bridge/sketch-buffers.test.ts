/**
 * Regression: the sketch collects SPI read data for a DATA frame across the transactions of a
 * batch, and may send an ACK (credit report) or an INT event while it waits for the rest of the
 * batch from the host. Those control frames once shared the read-data buffer and overwrote its
 * first bytes, which the per-frame CRC then dutifully protected: through the simulated board about
 * one received Ethernet frame in ten arrived with a bad TCP checksum.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { createSimulatedBoard, type SimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';

let board: SimulatedBoard | undefined;
let hal: BridgeHal | undefined;

afterEach(async () => {
  await hal?.close();
  await board?.stop();
  board = hal = undefined;
});

const hexPath = process.env.SPINET_SKETCH_HEX; // to show the old sketch failing: a hex from before the fix

describe('bridge sketch: read data survives control frames sent mid-batch', () => {
  it('a read followed, in the same batch, by a write longer than one host frame returns the read bytes intact', async () => {
    const clock = new VirtualClock();
    const chip = new SpiMemoryChip();
    board = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel: '16u2', ...(hexPath ? { hexPath } : {}) });
    hal = await board.openHal();
    const pattern = Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);
    await hal.spi.transfer([{ write: Uint8Array.of(0x02, 0, ...pattern) }]);
    for (let round = 0; round < 20; round++) {
      // Transaction 1 reads 16 bytes (they wait in the sketch's DATA buffer); transaction 2 writes
      // 180 bytes, so it spans several host frames and the sketch reports credit in between.
      const filler = new Uint8Array(180).fill(round);
      const result = await hal.spi.transfer([
        { write: Uint8Array.of(0x03, round), read: 16 },
        { write: Uint8Array.of(0x02, 128, ...filler.subarray(0, 120)) },
        { write: Uint8Array.of(0x55, ...filler) },
      ]);
      // An INT edge during the next batch forces an EVENT frame mid-batch as well.
      if (round % 2 === 0) chip.setInterrupt(round % 4 === 0);
      expect([...result.subarray(0, 16)], `round ${round}`).toEqual(pattern.slice(round, round + 16));
    }
    expect(hal.stats.naks).toBe(0);
  });
});
