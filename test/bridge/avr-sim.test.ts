/**
 * The host HAL against the committed sketch hex running in avr8js (≈4× real time, so every test
 * here is a few simulated hundred milliseconds at most).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { HalEvent } from '../../src/drivers/hal.js';
import type { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { createSimulatedBoard, type SimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import type { LinkModelName } from '../../boards/sim/serial-link.js';

let board: SimulatedBoard | undefined;
let hal: BridgeHal | undefined;

async function start(linkModel: LinkModelName = '16u2') {
  const clock = new VirtualClock();
  const chip = new SpiMemoryChip();
  board = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel });
  hal = await board.openHal({ isRetryable: () => true });
  return { clock, chip, board, hal };
}

afterEach(async () => {
  await hal?.close();
  await board?.stop();
  board = hal = undefined;
});

const write = (address: number, data: number[]) => ({ write: Uint8Array.of(0x02, address, ...data) });
const read = (address: number, n: number) => ({ write: Uint8Array.of(0x03, address), read: n });

describe('bridge HAL against the sketch in avr8js', () => {
  it('boots without glitching CS, says HELLO, and runs SPI batches with the right bytes', async () => {
    const { hal, chip, board } = await start();
    expect(hal.hello).toMatchObject({ version: 2, programBytes: 64, name: 'uno', window: 1240, csPin: 10, intPin: 2, resetPin: 9 });
    expect(board.mcu.baudRate).toBe(1_000_000);
    // Two resets so far (power-on, open): each one selected the chip zero times before the host asked.
    expect(chip.selects).toBe(0);
    const data = Array.from({ length: 150 }, (_, i) => (i * 13) & 0xff);
    await hal.spi.transfer([write(0, data)]);
    expect([...chip.memory.subarray(0, 150)]).toEqual(data);
    const got = await hal.spi.transfer([read(20, 100), { write: Uint8Array.of(0x99, 0x01), duplex: true, keepSelected: true }, { read: 1 }]);
    expect([...got]).toEqual([...data.slice(20, 120), 0x00, 0xfe, 0xff]);
    expect(chip.selects).toBe(3);
  });

  it('at 2 Mbaud, pipelines 40 batches under credit flow control and loses nothing', async () => {
    const { hal, chip, clock, board } = await start('ideal');
    await hal.setBaud(2_000_000);
    // The board switches two character times after its DONE; a round trip at the new rate shows it did.
    await hal.ping();
    expect(board.mcu.baudRate).toBe(2_000_000);
    const t0 = clock.now();
    const blocks = Array.from({ length: 20 }, (_, k) => Array.from({ length: 200 }, (_, i) => (k * 31 + i) & 0xff));
    const writes = blocks.map((block, k) => hal.spi.transfer([write(k * 10, block.slice(0, 10)), { write: Uint8Array.of(0x55, ...block) }]));
    const reads = blocks.map((_, k) => hal.spi.transfer([read(k * 10, 10), { write: Uint8Array.of(0x55), read: 200 }]));
    await Promise.all(writes);
    const results = await Promise.all(reads);
    const ms = clock.now() - t0;
    results.forEach((r, k) => expect([...r.subarray(0, 10)]).toEqual(blocks[k]!.slice(0, 10)));
    expect(hal.stats.peakCreditUsed).toBeLessThanOrEqual(hal.hello!.window);
    expect(hal.stats.peakCreditUsed).toBeGreaterThan(hal.hello!.window / 2);
    const payload = 20 * (212 + 212);
    console.log(`2 Mbaud pipelined: ${payload} B SPI payload in ${ms.toFixed(1)} ms simulated = ${(payload / ms).toFixed(1)} kB/s; naks ${hal.stats.naks}, retransmitted ${hal.stats.retransmittedFrames}, peak credit ${hal.stats.peakCreditUsed}`);
    expect(chip.memory[199]).toBe(blocks[19]![9]);
  });

  it('forwards INT edges as interrupt changes and carries the level in every frame', async () => {
    const { hal, chip } = await start();
    const seen: boolean[] = [];
    hal.interrupt.onChange((asserted) => seen.push(asserted));
    chip.setInterrupt(true);
    await hal.delay(10);
    expect(hal.interrupt.asserted).toBe(true);
    chip.setInterrupt(false);
    await hal.delay(10);
    expect(seen).toEqual([true, false]);
  });

  it('drives the spare pins: output, input with pull-up and change reports, analog, PWM; refuses CS and the SD card select', async () => {
    const { hal, board } = await start();
    await hal.gpio.pinMode(8, 'output');
    await hal.gpio.digitalWrite(8, 1);
    expect(board.pins.level(8)).toBe('high');
    await hal.gpio.digitalWrite(8, 0);
    expect(board.pins.level(8)).toBe('low');
    // D4 selects a shield's SD card: held high from boot, and not the host's to drive.
    expect(board.pins.level(4)).toBe('high');
    await expect(hal.gpio.digitalWrite(4, 0)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(board.pins.level(4)).toBe('high');
    const changes: [number, number][] = [];
    hal.gpio.onPinChange((pin, value) => changes.push([pin, value]));
    await hal.gpio.pinMode(7, 'input-pullup');
    expect(board.pins.level(7)).toBe('input-pullup');
    expect(await hal.gpio.digitalRead(7)).toBe(1);
    board.pins.setInput(7, false);
    await hal.delay(10);
    expect(changes).toEqual([[7, 0]]);
    board.pins.setAnalog(1, 2.5);
    expect(Math.abs((await hal.gpio.analogRead(15)) - 512)).toBeLessThanOrEqual(2);
    await hal.gpio.pwmWrite(6, 128);
    expect(board.pins.pwmDuty(6)).toBe(128);
    await expect(hal.gpio.pinMode(10, 'output')).rejects.toMatchObject({ code: 'EINVAL' });
    await hal.reset.pulse(2);
  });

  it('recovers from corrupted bytes both ways, a board reset and a vanished port', async () => {
    const { hal, chip, board } = await start();
    const events: HalEvent[] = [];
    hal.onEvent((e) => events.push(e));
    board.faults.corruptNext('host-to-board', 1, 30);
    board.faults.corruptNext('board-to-host', 1, 20);
    const writes = Array.from({ length: 8 }, (_, k) => hal!.spi.transfer([write(k * 8, [k, k, k, k, k, k, k, k])]));
    await Promise.all(writes);
    expect([...chip.memory.subarray(56, 64)]).toEqual([7, 7, 7, 7, 7, 7, 7, 7]);
    expect([...(await hal.spi.transfer([read(0, 64)]))].slice(0, 9)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(hal.stats.naks + hal.stats.retransmittedFrames + hal.stats.lostReplies).toBeGreaterThan(0);

    board.faults.resetBoard();
    while (events.length < 2) await hal.delay(5);
    expect(events.splice(0)).toEqual([{ type: 'link-lost', reason: 'board reset' }, { type: 'link-restored', boardReset: true }]);

    board.faults.vanishPort({ powerOff: true });
    await expect(hal.spi.transfer([read(0, 1)])).rejects.toMatchObject({ code: 'ELINKLOST' });
    await hal.delay(100);
    board.faults.reappearPort();
    while (events.length < 2) await hal.delay(20);
    expect(events).toEqual([{ type: 'link-lost', reason: expect.any(String) }, { type: 'link-restored', boardReset: true }]);
    expect([...(await hal.spi.transfer([read(57, 1)]))]).toEqual([7]);
  });
});
