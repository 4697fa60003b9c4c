import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/time/random.js';
import type { HalEvent } from '../../src/drivers/hal.js';
import { closeModelHal, openModelHal, type ModelHal, type ModelHalOptions } from './model-hal.js';

let current: ModelHal | undefined;

async function setup(options: ModelHalOptions = {}): Promise<ModelHal> {
  current = await openModelHal(options);
  return current;
}

afterEach(async () => {
  await closeModelHal(current);
  current = undefined;
});

const write = (address: number, data: number[]) => ({ write: Uint8Array.of(0x02, address, ...data) });
const read = (address: number, n: number) => ({ write: Uint8Array.of(0x03, address), read: n });

describe('bridge HAL against the TypeScript board model', () => {
  it('says HELLO and learns the board', async () => {
    const { hal } = await setup();
    expect(hal.hello).toMatchObject({ version: 2, window: 1240, maxPayload: 64, csPin: 10, intPin: 2, programBytes: 64 });
    expect(hal.spi.maxProgramBytes).toBe(64);
    expect(hal.ready).toBe(true);
    // What the console shows of the link: the board's credit window from its HELLO, none of it in use.
    expect(hal.linkStatus()).toEqual({
      state: 'ready', baudRate: 1_000_000, creditWindow: 1240, creditUsed: 0, requestsInFlight: 0, requestsWaiting: 0,
      board: hal.hello!.name, protocolVersion: 2,
    });
    expect(hal.stats.framesReceived).toBeGreaterThan(0);
    expect(hal.stats.boardResets).toBe(0);
  });

  it('promises a floor on write time: the line rate beyond the credit window, else the 8 MHz SPI clock', async () => {
    const { hal } = await setup();
    // 1514 bytes: 1514 − (1240 credit + 64) = 210 bytes at 10 bits each on the 1 Mbaud line.
    expect(hal.spi.minWriteMs!(1514)).toBeCloseTo(2.1, 5);
    // 100 bytes fit in the window: only the SPI clock (1 µs a byte) bounds them.
    expect(hal.spi.minWriteMs!(100)).toBeCloseTo(0.1, 5);
  });

  it('runs SPI batches in order and returns the bytes read, duplex bytes first', async () => {
    const { hal, chip } = await setup();
    const data = Array.from({ length: 200 }, (_, i) => (i * 7) & 0xff);
    await hal.spi.transfer([write(0, data)]);
    expect([...chip.memory.subarray(0, 200)]).toEqual(data);
    const got = await hal.spi.transfer([read(10, 3), { write: Uint8Array.of(0x55, 0xaa), duplex: true }]);
    expect([...got]).toEqual([70, 77, 84, 0x00, 0x55]);
  });

  it('given many batches in flight through a slow board, it never exceeds the credit window and loses nothing', async () => {
    // A board whose loop drains 20 bytes/ms (a fifth of the 1 Mbaud line rate): credit must throttle.
    const { hal, board, chip } = await setup({ consumeBytesPerMs: 20 });
    const writes = Array.from({ length: 40 }, (_, k) => hal.spi.transfer([write(k * 6, [k, k, k, k, k, k])]));
    const reads = Array.from({ length: 40 }, (_, k) => hal.spi.transfer([read(k * 6, 6)]));
    await Promise.all(writes);
    const results = await Promise.all(reads);
    results.forEach((r, k) => expect([...r]).toEqual([k, k, k, k, k, k]));
    expect(board.overruns).toBe(0);
    expect(hal.stats.peakCreditUsed).toBeLessThanOrEqual(board.window);
    expect(hal.stats.peakCreditUsed).toBeGreaterThan(board.window / 2);
    expect(chip.memory[239]).toBe(39);
  });

  it('reports INT edges and level as interrupt changes', async () => {
    const { hal, chip, clock } = await setup();
    const seen: boolean[] = [];
    hal.interrupt.onChange((asserted) => seen.push(asserted));
    chip.setInterrupt(true);
    await hal.delay(10);
    expect(hal.interrupt.asserted).toBe(true);
    chip.setInterrupt(false);
    await hal.delay(10);
    expect(seen).toEqual([true, false]);
    expect(clock.now()).toBeGreaterThan(0);
  });

  it('drives GPIO: pin modes, writes, reads, analog, and reports input changes', async () => {
    const { hal, board } = await setup();
    await hal.gpio.pinMode(4, 'output');
    await hal.gpio.digitalWrite(4, 1);
    expect(board.pins[4]).toMatchObject({ mode: 'output', value: 1 });
    board.analog[2] = 512;
    expect(await hal.gpio.analogRead(16)).toBe(512);
    const changes: [number, number][] = [];
    hal.gpio.onPinChange((pin, value) => changes.push([pin, value]));
    await hal.gpio.pinMode(7, 'input');
    board.setInput(7, 1);
    await hal.delay(10);
    expect(await hal.gpio.digitalRead(7)).toBe(1);
    expect(changes).toEqual([[7, 1]]);
    await expect(hal.gpio.digitalWrite(10, 0)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('given corrupted and dropped bytes host → board, go-back-N executes every write exactly once, in order', async () => {
    const { hal, link, chip } = await setup();
    link.setFaults('host-to-board', { corrupt: 0.002, drop: 0.001, random: new SeededRandom(7) });
    const jobs = Array.from({ length: 60 }, (_, k) => hal.spi.transfer([write(k, [k + 1])]));
    await Promise.all(jobs);
    link.setFaults('host-to-board', undefined);
    expect([...chip.memory.subarray(0, 60)]).toEqual(Array.from({ length: 60 }, (_, k) => k + 1));
    expect(link.stats.corrupted + link.stats.dropped).toBeGreaterThan(0);
    expect(hal.stats.retransmittedFrames).toBeGreaterThan(0);
  });

  it('given corrupted replies, retryable batches are retried and the others fail with EPROTO', async () => {
    const { hal, link, chip } = await setup({ isRetryable: () => true });
    chip.memory.set([1, 2, 3, 4], 0);
    link.corruptNext('board-to-host', 1, 8);
    expect([...(await hal.spi.transfer([read(0, 4)]))]).toEqual([1, 2, 3, 4]);
    expect(hal.stats.lostReplies).toBe(1);
    await hal.close();
    current = undefined;
    const second = await setup();
    second.link.corruptNext('board-to-host', 1, 8);
    await expect(second.hal.spi.transfer([read(0, 4)])).rejects.toMatchObject({ code: 'EPROTO' });
    expect(await second.hal.ping()).toBeGreaterThan(0);
  });

  it('when the port vanishes and comes back, it fails requests with ELINKLOST, then reconnects and says whether the board reset', async () => {
    const { hal, link } = await setup();
    const events: HalEvent[] = [];
    hal.onEvent((e) => events.push(e));
    link.vanish({ powerOff: true });
    await expect(hal.spi.transfer([read(0, 1)])).rejects.toMatchObject({ code: 'ELINKLOST' });
    await hal.delay(1200);
    link.reappear();
    while (!hal.ready) await hal.delay(50);
    expect(events).toEqual([{ type: 'link-lost', reason: expect.any(String) }, { type: 'link-restored', boardReset: true }]);
    expect((await hal.spi.transfer([read(0, 1)])).length).toBe(1);
  });

  it('when the board resets by itself, it reports link-lost then link-restored with boardReset', async () => {
    const { hal, board } = await setup();
    const events: HalEvent[] = [];
    hal.onEvent((e) => events.push(e));
    const resetsBefore = hal.stats.boardResets;
    board.reboot();
    while (events.length < 2) await hal.delay(5);
    expect(events).toEqual([{ type: 'link-lost', reason: 'board reset' }, { type: 'link-restored', boardReset: true }]);
    expect(hal.stats.boardResets).toBe(resetsBefore + 1);
    expect(await hal.ping()).toBeGreaterThan(0);
  });
});
