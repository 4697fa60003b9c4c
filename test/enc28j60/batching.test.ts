import { describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from './spi-helpers.js';
import type { SpiLogTotals } from '../../hal/mock/mock-hal.js';
import { ENC28J60_DEFAULTS, type Enc28j60Options } from '../../src/drivers/enc28j60/options.js';

/**
 * Batching is the point of this driver: over the serial bridge every batch is a round trip.
 * These tests pin the counts the driver achieves, measured by the mock HAL's log, over a
 * simulated bridge (100 kB/s each way, 1 ms turnaround). Overhead = SPI bytes clocked minus the
 * frame bytes themselves.
 */
const checked = checkedAfterEach<Bench>();

async function measured(
  run: (ctx: { b: Bench; a: ReturnType<Bench['station']>; peer: ReturnType<Bench['peer']> }) => Promise<void>,
  driverOptions: Partial<Enc28j60Options> = {},
) {
  const b = bench();
  checked(b);
  // No safety-net poll during the measurement window: it would add its own (cheap) round trips.
  const a = b.station(MAC_A, 'a', { linkModel: BRIDGE_LINK, driverOptions: { pollIntervalMs: 1e9, ...driverOptions } });
  const peer = b.peer();
  await b.settle(a.board.nic.start());
  await b.run(5);
  const log = a.board.hal.log;
  const before = log.snapshot();
  await run({ b, a, peer });
  return { totals: log.since(before), a, peer };
}

/**
 * FRAMES frames from the peer, one every `gapMs` (frame i `sizeOf(i)` bytes): the totals, and for
 * each frame the round trips that came back between its sending and its delivery.
 */
async function isolatedFrames(sizeOf: (i: number) => number, gapMs: number, driverOptions: Partial<Enc28j60Options> = {}) {
  const batchesBeforeDelivery: number[] = [];
  const result = await measured(async ({ b, a, peer }) => {
    const log = a.board.hal.log;
    for (let i = 0; i < FRAMES; i++) {
      const before = log.snapshot();
      a.board.nic.attach({
        receive: (frame) => {
          a.received.push(Uint8Array.from(frame));
          batchesBeforeDelivery.push(log.since(before).roundTrips);
        },
        linkChange: () => {},
      });
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, sizeOf(i), i));
      await b.run(gapMs, 1);
    }
  }, driverOptions);
  return { ...result, batchesBeforeDelivery };
}

function perFrame(totals: SpiLogTotals, frames: number, frameBytes: number) {
  return {
    roundTrips: totals.roundTrips / frames,
    overheadBytes: (totals.bytesWritten - frameBytes) / frames,
  };
}

const FRAMES = 60;
const SIZE = 200;
/** Where a test hands over more frames than the link carries meanwhile: batching, not the queue limit. */
const WHOLE_BURST_QUEUED = { txQueueLimit: FRAMES };
/** Receive by interrupt-service batches, as on a HAL without programs. */
const CLASSIC: Partial<Enc28j60Options> = { rxProgram: false };

/**
 * Echo every frame the station receives back to the peer (addresses swapped); for each of FRAMES
 * 98-byte frames, the round trips the log recorded between the frame leaving the peer and the
 * reply reaching it.
 */
async function echoRoundTrips(driverOptions: Partial<Enc28j60Options>) {
  const replyAfter: number[] = [];
  const { a, peer } = await measured(async ({ b, a, peer }) => {
    const log = a.board.hal.log;
    let before = log.snapshot();
    a.board.nic.attach({
      receive: (frame) => {
        const reply = Uint8Array.from(frame);
        reply.set(MAC_PEER, 0);
        reply.set(MAC_A, 6);
        a.board.nic.transmit(reply);
      },
      linkChange: () => {},
    });
    peer.nic.attach({
      receive: (frame) => {
        peer.received.push(Uint8Array.from(frame));
        replyAfter.push(log.since(before).roundTrips);
      },
      linkChange: () => {},
    });
    for (let i = 0; i < FRAMES; i++) {
      before = log.snapshot();
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 98, i));
      await b.run(20, 1);
    }
  }, driverOptions);
  return { a, peer, replyAfter };
}

describe('ENC28J60 driver batching (round trips and SPI overhead per frame, simulated bridge)', () => {
  it('program: receives isolated frames of every size with no round trip before delivery; one write-only batch releases the ring', async () => {
    const sizes = [60, 98, 200, 1514];
    const { totals, a, batchesBeforeDelivery } = await isolatedFrames((i) => sizes[i % sizes.length]!, 40);
    expect(a.received.length).toBe(FRAMES);
    a.received.forEach((frame, i) => expect(frame).toEqual(makeFrame(MAC_A, MAC_PEER, sizes[i % sizes.length]!, i)));
    expect(batchesBeforeDelivery).toEqual(new Array<number>(FRAMES).fill(0));
    expect(totals.runs).toBeGreaterThanOrEqual(2 * FRAMES); // the frame's run and the one that finds none
    expect(totals.roundTrips / FRAMES).toBe(1); // ERXRDPT, unawaited
    const frameBytes = sizes.reduce((sum, n) => sum + n + 4, 0) * (FRAMES / sizes.length);
    // Per frame: the program's 21 command/register bytes + 6 header (+ pad), the empty run's 8,
    // the release's 4.
    expect(perFrame(totals, FRAMES, frameBytes).overheadBytes).toBeLessThanOrEqual(40);
  });

  it('program: sends the reply to a received frame in the first batch after it arrived', async () => {
    const { a, peer, replyAfter } = await echoRoundTrips({});
    expect(peer.received.length).toBe(FRAMES);
    expect(a.board.nic.stats().txFrames).toBe(FRAMES);
    // The log records a batch when its answer is back: the reply is on the wire before any batch
    // has come back since the frame arrived — it went out in the first one, with no read before.
    expect(replyAfter).toEqual(new Array<number>(FRAMES).fill(0));
  });

  it('program: receives bursts with no round trip per frame, only ring releases; ≤ 24 bytes overhead', async () => {
    const { totals, a } = await measured(async ({ b, peer }) => {
      for (let burst = 0; burst < FRAMES / 20; burst++) {
        for (let i = 0; i < 20; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, burst * 20 + i));
        await b.run(200, 2);
      }
    });
    expect(a.received.length).toBe(FRAMES);
    a.received.forEach((frame, i) => expect(frame).toEqual(makeFrame(MAC_A, MAC_PEER, SIZE, i)));
    const f = perFrame(totals, FRAMES, FRAMES * (SIZE + 4));
    // ERXRDPT every quarter of the ring (5 KB / 4 ≈ 6 frames of 210 bytes) and at the end of a burst.
    expect(f.roundTrips).toBeLessThanOrEqual(0.25);
    expect(f.overheadBytes).toBeLessThanOrEqual(24);
  });

  it('batches: receives an isolated frame longer than the read-ahead in 2 round trips: interrupt service (header + first bytes) + the rest', async () => {
    const { totals, a } = await measured(async ({ b, peer }) => {
      for (let i = 0; i < FRAMES; i++) {
        peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, i));
        await b.run(20, 1);
      }
    }, CLASSIC);
    expect(a.received.length).toBe(FRAMES);
    const f = perFrame(totals, FRAMES, FRAMES * (SIZE + 4));
    expect(f.roundTrips).toBe(2);
    expect(f.overheadBytes).toBeLessThanOrEqual(40.1);
  });

  it('batches: delivers an isolated ping-size frame from the interrupt service batch alone; the ring release follows unawaited', async () => {
    const PING_FRAME = 98; // 56-byte ICMP payload: 102 bytes with FCS, inside rxReadAheadBytes
    expect(PING_FRAME + 4).toBeLessThanOrEqual(ENC28J60_DEFAULTS.rxReadAheadBytes);
    const { totals, a, batchesBeforeDelivery } = await isolatedFrames(() => PING_FRAME, 20, CLASSIC);
    expect(a.received.length).toBe(FRAMES);
    expect(a.received.at(-1)).toEqual(makeFrame(MAC_A, MAC_PEER, PING_FRAME, FRAMES - 1));
    expect(batchesBeforeDelivery).toEqual(new Array<number>(FRAMES).fill(1));
    // Service + end of service (PKTDEC, ERXRDPT, INTIE), the second write-only.
    expect(totals.roundTrips / FRAMES).toBe(2);
  });

  it('batches: sends the reply to a received frame in the batch after the one that read the request', async () => {
    const { a, peer, replyAfter } = await echoRoundTrips(CLASSIC);
    expect(peer.received.length).toBe(FRAMES);
    expect(a.board.nic.stats().txFrames).toBe(FRAMES);
    // The log records a batch once it has run: when the reply reaches the wire only the service
    // batch that read the request has, so the reply went out with the very next batch.
    expect(replyAfter).toEqual(new Array<number>(FRAMES).fill(1));
  });

  it('batches: receives a burst of small frames several per round trip (read-ahead past the frame being finished)', async () => {
    const SMALL = 60;
    const { totals, a } = await measured(async ({ b, peer }) => {
      for (let burst = 0; burst < FRAMES / 20; burst++) {
        for (let i = 0; i < 20; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SMALL, burst * 20 + i));
        await b.run(200, 2);
      }
    }, CLASSIC);
    expect(a.received.length).toBe(FRAMES);
    a.received.forEach((frame, i) => expect(frame.subarray(0, SMALL)).toEqual(makeFrame(MAC_A, MAC_PEER, SMALL, i)));
    const f = perFrame(totals, FRAMES, FRAMES * (SMALL + 4));
    // Per burst of 20: the service, the first frame (+ ERXWRPT), then everything up to ERXWRPT in
    // one read, and the end of the service: 4 round trips.
    expect(f.roundTrips).toBeLessThanOrEqual(0.2);
    // ERXWRPT reads and the read-ahead past the last frame of a read are paid per batch.
    expect(f.overheadBytes).toBeLessThanOrEqual(16);
  });

  it('batches: receives waiting frames several per round trip (every packet up to ERXWRPT in one read), ≤ 16 bytes overhead', async () => {
    const { totals, a } = await measured(async ({ b, peer }) => {
      for (let burst = 0; burst < FRAMES / 20; burst++) {
        for (let i = 0; i < 20; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, burst * 20 + i));
        await b.run(200, 2);
      }
    }, CLASSIC);
    expect(a.received.length).toBe(FRAMES);
    const f = perFrame(totals, FRAMES, FRAMES * (SIZE + 4));
    expect(f.roundTrips).toBeLessThanOrEqual(0.2); // 4 per burst of 20, as above
    expect(f.overheadBytes).toBeLessThanOrEqual(16);
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
    // Full duplex (a port forced to full): the wire time bounds a frame, so sends may follow.
    const { totals } = await measured(async ({ b, a, peer }) => {
      for (let i = 0; i < FRAMES; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i));
      await b.until(() => peer.received.length === FRAMES, 2_000, 1);
      await b.run(10, 1);
    }, { ...WHOLE_BURST_QUEUED, fullDuplex: true });
    const f = perFrame(totals, FRAMES, FRAMES * SIZE);
    expect(f.roundTrips).toBeLessThanOrEqual(1 + 1 / FRAMES);
    // 22: TXRST pulse 4, EWRPT 4, WBM opcode + control byte 2, ETXSTH 2 (two buffers), ETXND 4,
    // TXIF/TXERIF clear 2, TXRTS 2, the previous frame's EIR 2; plus the final completion check.
    expect(f.overheadBytes).toBeLessThanOrEqual(22.5);
  });

  it('in half duplex, transmits back-to-back frames in one round trip each: a send stages the next frame and reads EIR after it', async () => {
    const { totals, a } = await measured(async ({ b, a, peer }) => {
      for (let i = 0; i < FRAMES; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i));
      await b.until(() => peer.received.length === FRAMES, 2_000, 1);
      await b.run(10, 1);
    }, WHOLE_BURST_QUEUED);
    const f = perFrame(totals, FRAMES, FRAMES * SIZE);
    expect(f.roundTrips).toBeLessThanOrEqual(1 + 2 / FRAMES);
    expect(a.board.nic.events['tx-preempted']).toBeUndefined();
  });

  it('in half duplex, sends full-size frames ahead of the answers: writing the next frame outlasts the wire time of the last and of a frame it defers to', async () => {
    const frames = 20;
    const { totals, a, peer } = await measured(async ({ b, a, peer }) => {
      for (let i = 0; i < frames; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 1514, i));
      await b.until(() => peer.received.length === frames, 2_000, 1);
      await b.run(10, 1);
    }, WHOLE_BURST_QUEUED);
    expect(peer.received.map((frame) => frame.length)).toEqual(Array(frames).fill(1514));
    // Settling each send by the last one's answer would keep one batch out at a time.
    expect(totals.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(totals.roundTrips / frames).toBeLessThanOrEqual(1 + 2 / frames);
    expect(a.board.nic.events['tx-preempted']).toBeUndefined();
  });

  it('keeps several batches in flight when traffic flows both ways', async () => {
    const { totals, a, peer } = await measured(async ({ b, a, peer }) => {
      for (let i = 0; i < FRAMES; i++) {
        a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i));
        peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, SIZE, i));
        await b.run(3, 0.5);
      }
      await b.until(() => peer.received.length === FRAMES && a.received.length === FRAMES, 2_000, 1);
    }, WHOLE_BURST_QUEUED);
    expect(peer.received.length).toBe(FRAMES);
    expect(a.received.length).toBe(FRAMES);
    expect(totals.maxInFlight).toBeGreaterThanOrEqual(2);
    // Both directions share batches: fewer than 2 round trips per frame moved.
    expect(totals.roundTrips / (2 * FRAMES)).toBeLessThan(1.5);
  });

  it('given a full transmit queue, drops the newest frame and counts it (drop-tail at txQueueLimit)', async () => {
    const limit = ENC28J60_DEFAULTS.txQueueLimit;
    const offered = limit + 12;
    const { a, peer } = await measured(async ({ b, a }) => {
      const accepted = Array.from({ length: offered }, (_, i) => a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, SIZE, i)));
      // One frame leaves for the chip at once; the queue holds txQueueLimit more.
      expect(accepted.slice(0, limit + 1).every(Boolean)).toBe(true);
      expect(accepted.slice(limit + 1).some(Boolean)).toBe(false);
      await b.until(() => a.board.nic.stats().txFrames === limit + 1, 2_000, 1);
    });
    expect(a.board.nic.stats().drops['tx-queue-full']).toBe(offered - limit - 1);
    expect(peer.received.map((f) => f[14]! | (f[15]! << 8))).toEqual(Array.from({ length: limit + 1 }, (_, i) => i));
  });
});
