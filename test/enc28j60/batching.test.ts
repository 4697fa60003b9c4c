import { afterEach, describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { makeFrame } from './spi-helpers.js';
import type { SpiLogTotals } from '../../hal/mock/mock-hal.js';

/**
 * Batching is the point of this driver: over the serial bridge every batch is a round trip.
 * These tests pin the counts the driver achieves, measured by the mock HAL's log, over a
 * simulated bridge (100 kB/s each way, 1 ms turnaround). Overhead = SPI bytes clocked minus the
 * frame bytes themselves.
 */
let current: Bench | undefined;
afterEach(() => {
  current?.expectNoViolations();
  current = undefined;
});

async function measured(run: (ctx: { b: Bench; a: ReturnType<Bench['station']>; peer: ReturnType<Bench['peer']> }) => Promise<void>) {
  const b = bench();
  current = b;
  // No safety-net poll during the measurement window: it would add its own (cheap) round trips.
  const a = b.station(MAC_A, 'a', { linkModel: BRIDGE_LINK, driverOptions: { pollIntervalMs: 1e9 } });
  const peer = b.peer();
  await b.settle(a.board.nic.start());
  await b.run(5);
  const log = a.board.hal.log;
  const before = log.snapshot();
  await run({ b, a, peer });
  return { totals: log.since(before), a, peer };
}

function perFrame(totals: SpiLogTotals, frames: number, frameBytes: number) {
  return {
    roundTrips: totals.roundTrips / frames,
    overheadBytes: (totals.bytesWritten - frameBytes) / frames,
  };
}

const FRAMES = 60;
const SIZE = 200;

describe('ENC28J60 driver batching (round trips and SPI overhead per frame, simulated bridge)', () => {
  it('receives an isolated frame in 2 round trips: interrupt service + frame', async () => {
    const { totals, a } = await measured(async ({ b, peer }) => {
      for (let i = 0; i < FRAMES; i++) {
        peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, i));
        await b.run(20, 1);
      }
    });
    expect(a.received.length).toBe(FRAMES);
    const f = perFrame(totals, FRAMES, FRAMES * (SIZE + 4));
    expect(f.roundTrips).toBe(2);
    expect(f.overheadBytes).toBeLessThanOrEqual(50);
  });

  it('receives waiting frames in one round trip each (speculative next-header read), ≤ ~20 bytes overhead', async () => {
    const { totals, a } = await measured(async ({ b, peer }) => {
      for (let burst = 0; burst < FRAMES / 20; burst++) {
        for (let i = 0; i < 20; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, burst * 20 + i));
        await b.run(200, 2);
      }
    });
    expect(a.received.length).toBe(FRAMES);
    const f = perFrame(totals, FRAMES, FRAMES * (SIZE + 4));
    expect(f.roundTrips).toBeLessThanOrEqual(1.05); // one service per burst of 20
    expect(f.overheadBytes).toBeLessThanOrEqual(20);
  });

  it('transmits an isolated frame in 2 round trips: the send + the completion check', async () => {
    const { totals, peer } = await measured(async ({ b, a }) => {
      for (let i = 0; i < FRAMES; i++) {
        a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i));
        await b.run(20, 1);
      }
    });
    expect(peer.received.length).toBe(FRAMES);
    const f = perFrame(totals, FRAMES, FRAMES * SIZE);
    expect(f.roundTrips).toBe(2);
    expect(f.overheadBytes).toBeLessThanOrEqual(22);
  });

  it('transmits back-to-back frames in one round trip each (completion read in the next send)', async () => {
    const { totals } = await measured(async ({ b, a, peer }) => {
      for (let i = 0; i < FRAMES; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i));
      await b.until(() => peer.received.length === FRAMES, 2_000, 1);
      await b.run(10, 1);
    });
    const f = perFrame(totals, FRAMES, FRAMES * SIZE);
    expect(f.roundTrips).toBeLessThanOrEqual(1 + 1 / FRAMES);
    expect(f.overheadBytes).toBeLessThanOrEqual(20.5); // 20, plus the final completion check
  });

  it('keeps several batches in flight when traffic flows both ways', async () => {
    const { totals, a, peer } = await measured(async ({ b, a, peer }) => {
      for (let i = 0; i < FRAMES; i++) {
        a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i));
        peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, i));
        await b.run(3, 0.5);
      }
      await b.until(() => peer.received.length === FRAMES && a.received.length === FRAMES, 2_000, 1);
    });
    expect(peer.received.length).toBe(FRAMES);
    expect(a.received.length).toBe(FRAMES);
    expect(totals.maxInFlight).toBeGreaterThanOrEqual(2);
    // Both directions share batches: fewer than 2 round trips per frame moved.
    expect(totals.roundTrips / (2 * FRAMES)).toBeLessThan(1.5);
  });
});
