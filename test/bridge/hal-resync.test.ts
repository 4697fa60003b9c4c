/**
 * What a HELLO resync does with the requests in flight (docs/bridge-protocol.md §2, §5): the board
 * reports what it received in an ACK just before it answers a HELLO. With that report the host
 * resends exactly what never arrived; without it (lost on the line) a frame sent but not acked may
 * have arrived, and a batch that must not run twice is failed rather than sent again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/time/random.js';
import type { SpiTransaction } from '../../src/drivers/hal.js';
import { BOARD_FRAME_OVERHEAD, Command } from '../../hal/bridge/protocol.js';
import { type Direction } from '../../boards/sim/serial-link.js';
import { closeModelHal, openModelHal, type ModelHal } from './model-hal.js';

/** Wire bytes of an ACK frame (no payload): dropping exactly these loses it without a trace. */
const ACK_WIRE_BYTES = BOARD_FRAME_OVERHEAD;

interface Setup extends ModelHal {
  /** SPI commands the board executed. */
  spiCommands(): number;
}

let current: Setup | undefined;

async function setup(): Promise<Setup> {
  // Nothing is retryable: a batch that ran must never run again.
  const base = await openModelHal();
  current = { ...base, spiCommands: () => base.commands.filter((c) => c === Command.SPI).length };
  return current;
}

afterEach(async () => {
  await closeModelHal(current);
  current = undefined;
});

const writeAt = (address: number, ...data: number[]): SpiTransaction => ({ write: Uint8Array.of(0x02, address, ...data) });

/**
 * Lose every byte going `direction` while `batch` is sent, until the host gives up on go-back-N
 * and says HELLO; then let the HELLO exchange through, except (with `loseReport`) the board's ACK
 * before its answer.
 */
async function transferThroughResync(setup: Setup, direction: Direction, batch: SpiTransaction[], loseReport: boolean): Promise<PromiseSettledResult<Uint8Array>> {
  const { hal, link } = setup;
  link.setFaults(direction, { drop: 1, random: new SeededRandom(1) });
  const result = hal.spi.transfer(batch).then(
    (value) => ({ status: 'fulfilled', value }) as const,
    (reason: unknown) => ({ status: 'rejected', reason }) as const,
  );
  while (hal.stats.resyncs === 0) await hal.delay(0.1);
  // The HELLO is on its way (1 ms USB latency): the board has not answered yet.
  link.setFaults(direction, undefined);
  if (loseReport) link.dropNext('board-to-host', ACK_WIRE_BYTES);
  return result;
}

describe('bridge HAL: a resync and the requests it interrupts', () => {
  it.each([
    ['arrives', false],
    ['is lost too', true],
  ])('given a batch the board executed while every report of it was lost, when the report before the HELLO answer %s, the batch is not run again: it fails with ETIMEDOUT', async (_, loseReport) => {
    const s = await setup();
    const outcome = await transferThroughResync(s, 'board-to-host', [writeAt(0x20, 7)], loseReport);
    expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'ETIMEDOUT' } });
    expect(s.spiCommands()).toBe(1);
    expect(s.chip.memory[0x20]).toBe(7);
    expect(s.hal.stats.resyncs).toBe(1);
    // The session goes on.
    await s.hal.spi.transfer([writeAt(0x21, 8)]);
    expect(s.spiCommands()).toBe(2);
  });

  it('given a batch the board never received, when the report before the HELLO answer says so, the batch is sent again and runs once', async () => {
    const s = await setup();
    const outcome = await transferThroughResync(s, 'host-to-board', [writeAt(0x20, 7)], false);
    expect(outcome.status).toBe('fulfilled');
    expect(s.spiCommands()).toBe(1);
    expect(s.chip.memory[0x20]).toBe(7);
  });

  it('given a batch the board never received, when the report before the HELLO answer is lost, the host cannot tell and fails it rather than risk running it twice', async () => {
    const s = await setup();
    const outcome = await transferThroughResync(s, 'host-to-board', [writeAt(0x20, 7)], true);
    expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'ETIMEDOUT' } });
    expect(s.spiCommands()).toBe(0);
  });
});
