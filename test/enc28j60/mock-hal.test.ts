import { describe, expect, it } from 'vitest';
import { MockHal, bridgeLinkModel, type SpiSlave } from '../../hal/mock/mock-hal.js';
import { HalError, type HalEvent, type SpiTransaction } from '../../src/drivers/hal.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { PinSource } from './spi-helpers.js';

/** An SPI slave that echoes each byte + 1 and records chip-select cycles. */
class EchoSlave implements SpiSlave {
  readonly cycles: number[][] = [];
  executedAt: number[] = [];
  private currentCycle: number[] | undefined;
  constructor(private readonly clock: VirtualClock) {}
  spiSelect(): void {
    this.currentCycle = [];
    this.executedAt.push(this.clock.now());
  }
  spiExchange(mosi: number): number {
    this.currentCycle!.push(mosi);
    return (mosi + 1) & 0xff;
  }
  spiDeselect(): void {
    this.cycles.push(this.currentCycle!);
    this.currentCycle = undefined;
  }
}


describe('mock HAL', () => {
  it('runs a batch in order: one chip-select cycle per transaction unless keepSelected, reads concatenated', async () => {
    const clock = new VirtualClock();
    const slave = new EchoSlave(clock);
    const hal = new MockHal({ clock, slave });
    const done = hal.spi.transfer([
      { write: Uint8Array.of(1, 2), read: 2 },
      { write: Uint8Array.of(3), keepSelected: true },
      { write: Uint8Array.of(4, 5), duplex: true },
    ]);
    await clock.advanceAsync(0);
    expect(Array.from(await done)).toEqual([1, 1, 5, 6]);
    expect(slave.cycles).toEqual([[1, 2, 0, 0], [3, 4, 5]]);
    expect(hal.log.totals).toMatchObject({ batches: 1, roundTrips: 1, transactions: 3, bytesWritten: 7, bytesRead: 4 });
  });

  it('with a link model, a batch pays upload, turnaround and download time; pipelined batches overlap and stay in order', async () => {
    const clock = new VirtualClock();
    const slave = new EchoSlave(clock);
    const hal = new MockHal({
      clock,
      slave,
      linkModel: { bytesPerSecond: 1000, turnaroundMs: 2, batchOverheadBytes: 0, transactionOverheadBytes: 0, spiBytesPerSecond: 1e9 },
    });
    const completed: string[] = [];
    const first = hal.spi.transfer([{ write: new Uint8Array(10), read: 5 }]).then(() => completed.push(`first@${Math.round(clock.now() * 1000) / 1000}`));
    const second = hal.spi.transfer([{ write: new Uint8Array(10) }]).then(() => completed.push(`second@${Math.round(clock.now() * 1000) / 1000}`));
    expect(hal.batchesInFlight).toBe(2);
    await clock.advanceAsync(100);
    await Promise.all([first, second]);
    // first: 10 ms up + 1 ms, runs at 11; 5 ms down + 1 ms → 17. second: up 10..20, runs at 21, back at 22.
    expect(slave.executedAt.map((t) => Math.round(t * 1000) / 1000)).toEqual([11, 21]);
    expect(completed).toEqual(['first@17', 'second@22']);
    expect(hal.log.totals.maxInFlight).toBe(2);
  });

  it('with the bridge protocol model, counts the link bytes each way: 6 bytes per ≤64-byte request chunk, 9 per ≤112-byte reply chunk, a 3-byte DONE in the last (12 bytes alone)', async () => {
    const clock = new VirtualClock();
    const slave = new EchoSlave(clock);
    const hal = new MockHal({ clock, slave, linkModel: { ...bridgeLinkModel(100_000, 2), spiBytesPerSecond: 1e6 } });
    // Request: 0x10 id (2) + one transaction header (5) + 3 write bytes = 10 → one chunk → 16.
    // Reply: 100 read bytes → one chunk (9) → 109, + the DONE in it, 3 = 112.
    const done = hal.spi.transfer([{ write: Uint8Array.of(1, 2, 3), read: 100 }]);
    await clock.advanceAsync(10);
    await done;
    expect(hal.log.totals).toMatchObject({ linkBytesUp: 16, linkBytesDown: 112 });
    // 0.16 ms up, 1 ms, 103 SPI bytes at 1 MB/s, 1.12 ms down, 1 ms.
    expect(hal.log.entries[0]!.completedAt).toBeCloseTo(0.16 + 1 + 0.103 + 1.12 + 1, 9);
    // 113 read bytes take two reply chunks: 113 + 18 + 3.
    const two = hal.spi.transfer([{ write: Uint8Array.of(1), read: 113 }]);
    await clock.advanceAsync(10);
    await two;
    expect(hal.log.entries[1]!.linkBytesDown).toBe(113 + 18 + 3);
    // 200 bytes of request payload (2 + 5 + 193) take four chunks.
    const big = hal.spi.transfer([{ write: new Uint8Array(193) }]);
    await clock.advanceAsync(10);
    await big;
    expect(hal.log.entries[2]).toMatchObject({ linkBytesUp: 200 + 4 * 6, linkBytesDown: 12 });
  });

  it('mirrors the interrupt line with the one-way latency, and can drop edges', async () => {
    const clock = new VirtualClock();
    const pin = new PinSource();
    const hal = new MockHal({ clock, slave: new EchoSlave(clock), interrupt: pin, linkModel: { bytesPerSecond: 1e6, turnaroundMs: 4 } });
    const seen: string[] = [];
    hal.interrupt.onChange((a) => seen.push(`${a}@${clock.now()}`));
    pin.set(true);
    expect(hal.interrupt.asserted).toBe(false);
    await clock.advanceAsync(2);
    expect(hal.interrupt.asserted).toBe(true);
    hal.dropInterruptEdges = true;
    pin.set(false);
    await clock.advanceAsync(2);
    expect(hal.interrupt.asserted).toBe(false);
    expect(seen).toEqual(['true@2']);
  });

  it('injects HAL errors: a timeout after the batch ran, a link loss with events until restored', async () => {
    const clock = new VirtualClock();
    const slave = new EchoSlave(clock);
    const hal = new MockHal({ clock, slave });
    const events: HalEvent[] = [];
    hal.onEvent((e) => events.push(e));
    hal.injectFault('ETIMEDOUT', { executed: true });
    const timedOut = hal.spi.transfer([{ write: Uint8Array.of(9) }]);
    const rejection = expect(timedOut).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await clock.advanceAsync(0);
    await rejection;
    expect(slave.cycles).toEqual([[9]]); // it did run
    hal.loseLink('unplugged');
    await expect(hal.spi.transfer([{ write: Uint8Array.of(1) }])).rejects.toBeInstanceOf(HalError);
    hal.restoreLink(true);
    const ok = hal.spi.transfer([{ read: 1 }]);
    await clock.advanceAsync(0);
    expect(Array.from(await ok)).toEqual([1]);
    expect(events).toEqual([
      { type: 'link-lost', reason: 'unplugged' },
      { type: 'link-restored', boardReset: true },
    ]);
  });

  it('pulses the reset line: the chip is reset when the line is released', async () => {
    const clock = new VirtualClock();
    let resetAt = -1;
    const hal = new MockHal({ clock, slave: new EchoSlave(clock), reset: { hardReset: () => (resetAt = clock.now()) } });
    const pulse = hal.reset!.pulse(5);
    await clock.advanceAsync(10);
    await pulse;
    expect(resetAt).toBe(5);
  });

  it('with bytesOverTime, clocks a batch over its SPI time: the chip sees its bytes at their own instants, events can fall between them', async () => {
    const timesOf = async (bytesOverTime: boolean) => {
      const clock = new VirtualClock();
      const times: number[] = [];
      const slave: SpiSlave = { spiSelect() {}, spiDeselect() {}, spiExchange: () => (times.push(clock.now()), 0) };
      const hal = new MockHal({ clock, slave, linkModel: { bytesPerSecond: 100_000, turnaroundMs: 1, spiBytesPerSecond: 1e6 }, bytesOverTime });
      const done = hal.spi.transfer([{ write: new Uint8Array(1000) }, { write: Uint8Array.of(1), read: 1 }]);
      clock.advance(100);
      await done;
      return times;
    };
    const over = await timesOf(true);
    // 1002 bytes at 1 MB/s: the last one about 1 ms after the first.
    expect(over[over.length - 1]! - over[0]!).toBeCloseTo(1.0, 1);
    const atOnce = await timesOf(false);
    expect(atOnce[atOnce.length - 1]! - atOnce[0]!).toBe(0);
  });

  describe('transaction delays (SpiTransaction.delayUs)', () => {
    const linkModel = { bytesPerSecond: 1000, turnaroundMs: 2, batchOverheadBytes: 0, transactionOverheadBytes: 0, spiBytesPerSecond: 1e9 };

    it('with a link model, a delay adds to the batch\'s time on the chip: its effects land that much later, and so does its answer', async () => {
      const timings: { executedAt: number; completedAt: number }[] = [];
      for (const delayUs of [0, 3000]) {
        const clock = new VirtualClock();
        const slave = new EchoSlave(clock);
        const hal = new MockHal({ clock, slave, linkModel });
        expect(hal.spi.transactionDelays).toBe(true);
        let completedAt = -1;
        const done = hal.spi.transfer([{ write: new Uint8Array(10) }, { write: Uint8Array.of(1), delayUs }]).then(() => (completedAt = clock.now()));
        await clock.advanceAsync(100);
        await done;
        // 11 bytes up at 1 byte/ms + 1 ms: on the board at 12; the answer 1 ms after the chip is done.
        timings.push({ executedAt: Math.round(slave.executedAt[0]! * 1000) / 1000, completedAt: Math.round(completedAt * 1000) / 1000 });
      }
      expect(timings).toEqual([
        { executedAt: 12, completedAt: 13 },
        { executedAt: 15, completedAt: 16 },
      ]);
    });

    it('without a link model, a batch takes its delays (and nothing else)', async () => {
      const clock = new VirtualClock();
      const slave = new EchoSlave(clock);
      const hal = new MockHal({ clock, slave });
      const done = hal.spi.transfer([{ write: Uint8Array.of(1), delayUs: 2000 }, { write: Uint8Array.of(2), delayUs: 500 }]);
      await clock.advanceAsync(10);
      await done;
      expect(slave.executedAt).toEqual([2.5, 2.5]);
    });

    it('a program run takes the delays of the transactions it clocks, not those an IF skipped', async () => {
      const answerAt = async (program: SpiTransaction[]): Promise<number> => {
        const clock = new VirtualClock();
        const hal = new MockHal({ clock, slave: new EchoSlave(clock) });
        const answers: number[] = [];
        const armed = hal.spi.arm!(program, () => answers.push(clock.now()));
        await clock.advanceAsync(10);
        await armed;
        // Cut short by its IF, the run does not go again by itself.
        expect(answers.length).toBe(1);
        return answers[0]!;
      };
      // The echo slave answers 0xff + 1 = 0x00 to the duplex byte: the IF on it fails.
      const zero = { write: Uint8Array.of(0xff), duplex: true };
      expect(await answerAt([zero, { read: 1, delayUs: 4000 }, { read: 1, ifNonZero: 0 }])).toBe(4);
      expect(await answerAt([zero, { read: 1, ifNonZero: 0, delayUs: 4000 }])).toBe(0);
    });

    it('with transactionDelays off, refuses a batch or program with a delay (EUNSUPPORTED), and a delay out of range (EINVAL)', async () => {
      const clock = new VirtualClock();
      const hal = new MockHal({ clock, slave: new EchoSlave(clock), transactionDelays: false });
      expect(hal.spi.transactionDelays).toBe(false);
      await expect(hal.spi.transfer([{ write: Uint8Array.of(1), delayUs: 100 }])).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
      await expect(hal.spi.arm!([{ read: 1, delayUs: 100 }], () => {})).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
      await expect(hal.spi.transfer([{ write: Uint8Array.of(1), delayUs: 65_536 }])).rejects.toMatchObject({ code: 'EINVAL' });
      expect(hal.log.totals.batches).toBe(0);
    });
  });
});
