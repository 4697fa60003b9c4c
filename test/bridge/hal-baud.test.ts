/**
 * SET_BAUD and what undoes it: the board starts at its compiled-in rate after every reset, so the
 * host goes back to that rate when it opens the port again, and when a board that reset while the
 * port stayed open (a brown-out, the reset button) no longer answers at the rate SET_BAUD chose.
 * The simulated line garbles bytes between two ends at different rates (boards/sim/index.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { HalEvent } from '../../src/drivers/hal.js';
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

async function at2Mbaud() {
  const clock = new VirtualClock();
  board = await createSimulatedBoard({ board: 'uno', clock, chip: new SpiMemoryChip(), linkModel: 'ideal' });
  hal = await board.openHal({ isRetryable: () => true });
  await hal.setBaud(2_000_000);
  await hal.ping();
  expect(board.mcu.baudRate).toBe(2_000_000);
  const events: HalEvent[] = [];
  hal.onEvent((event) => events.push(event));
  return { clock, board, hal, events };
}

describe('bridge HAL: back to the compiled-in rate', () => {
  it('given a board reset while the port stays open, finds the board at its compiled-in rate and carries on', async () => {
    const { board, hal, events } = await at2Mbaud();
    board.faults.resetBoard();
    // The boot HELLO went out at 1 Mbaud to a host listening at 2: unheard. The next request
    // times out, the HELLOs at 2 Mbaud go unanswered, and the host tries 1 Mbaud.
    expect(await hal.ping()).toBeGreaterThan(0);
    expect(board.mcu.baudRate).toBe(1_000_000);
    expect(events).toContainEqual({ type: 'link-restored', boardReset: true });
  });

  it('given the port vanishes and comes back, opens it again at the compiled-in rate', async () => {
    const { board, hal, events } = await at2Mbaud();
    board.faults.vanishPort();
    await expect(hal.ping()).rejects.toMatchObject({ code: 'ELINKLOST' });
    await hal.delay(50);
    board.faults.reappearPort();
    for (let waited = 0; events.length < 2 && waited < 3_000; waited += 20) await hal.delay(20);
    expect(events).toEqual([{ type: 'link-lost', reason: expect.any(String) }, { type: 'link-restored', boardReset: true }]);
    expect(await hal.ping()).toBeGreaterThan(0);
    expect(board.mcu.baudRate).toBe(1_000_000);
  });
});
