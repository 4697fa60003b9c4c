import { VirtualLan, VirtualNic } from '../hal/lan/switch.js';
import { createMockEnc28j60Board, createMockW5500Board, type MockBoardOptions } from '../tools/boards.js';
import { bridgeLinkModel, type MockHal, type SpiLogTotals } from '../hal/mock/mock-hal.js';
import type { Nic } from '../src/link/nic.js';
import { VirtualClock } from '../src/time/virtual-clock.js';
import { parseMac } from '../src/wire/address.js';
import { makeFrame as frame } from '../test/enc28j60/spi-helpers.js';
import type { Benchmark, Measurement } from './harness.js';

/**
 * Each chip's driver — the ENC28J60's and the W5500's, side by side in one run — over the mock HAL
 * with the serial bridge's link model (`bridgeLinkModel`: 1 Mbaud ≈ 100,000 bytes/s each way, the
 * bridge protocol's framing, a fixed USB turnaround per batch), on a VirtualClock: every figure is
 * virtual time and the same on every run and machine. The emulated chip is in strict mode; a
 * misuse report fails the benchmark.
 *
 * Throughput figures carry the limit the link model allows as their `baseline` (so `ratio` is
 * the fraction of it achieved): the link bytes the driver spent per frame, in the busier
 * direction, against 100,000 bytes/s. What separates the two is the turnaround the driver waits
 * out between dependent batches.
 */
const LINK_BYTES_PER_SECOND = 100_000;
const ETHERNET_HEADER = 14;
const FULL_FRAME = 1514;
const MIN_FRAME = 60;
const WINDOW_MS = 4_000;
const STEP_MS = 0.25;

const MAC = parseMac('02:5e:00:00:00:0a');
const PEER_MAC = parseMac('02:5e:00:00:00:99');

/** A chip's mock board, as the benchmarks drive it. */
interface BoardUnderTest {
  hal: MockHal;
  nic: Nic;
  /** Another frame of `size` bytes fits the chip's receive buffer now (the sender keeps at most `depth` waiting). */
  rxRoom(size: number, depth: number): boolean;
  /** Frames the chip had to drop for want of room. */
  rxDropped(): number;
}

interface ChipUnderTest {
  readonly name: 'enc28j60' | 'w5500';
  open(options: MockBoardOptions & { driverOptions?: { pollIntervalMs: number } }): BoardUnderTest;
}

const CHIPS: readonly ChipUnderTest[] = [
  {
    name: 'enc28j60',
    open(options) {
      const board = createMockEnc28j60Board(options);
      const chip = board.emulator;
      return {
        ...board,
        // With the receive program a frame is counted out of EPKTCNT when the board has read it,
        // but its space comes back only with the driver's release.
        rxRoom: (size, depth) => chip.pendingPackets < depth && chip.receiveRingFree >= 6 + size + 4 + ((size + 4) & 1),
        rxDropped: () => chip.stats.rxDroppedOverflow,
      };
    },
  },
  {
    name: 'w5500',
    open(options) {
      const board = createMockW5500Board(options);
      const chip = board.emulator;
      return {
        ...board,
        // Each frame behind its 2-byte length in the 16 KB buffer.
        rxRoom: (size, depth) => chip.peekSocket(0, 'Sn_RX_RSR') + size + 2 <= Math.min(16384, depth * (size + 2)),
        rxDropped: () => chip.stats.rxDroppedFull,
      };
    },
  },
];

interface Rig {
  clock: VirtualClock;
  board: BoardUnderTest;
  peer: VirtualNic;
  /** Frames the driver delivered / the peer received. */
  counts: { received: number; peerReceived: number };
  run(ms: number, each?: () => void): Promise<void>;
  snapshot(): { log: SpiLogTotals; at: number };
}

async function rig(chip: ChipUnderTest, turnaroundMs: number, options: { poll?: boolean } = {}): Promise<Rig> {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const violations: string[] = [];
  const board = chip.open({
    clock,
    lan,
    mac: MAC,
    linkModel: bridgeLinkModel(LINK_BYTES_PER_SECOND, turnaroundMs),
    strict: true,
    onStrictViolation: (message) => violations.push(message),
    // The safety-net poll costs one small batch per idle period, not per frame: off where
    // per-frame counts are measured.
    ...(options.poll === false ? { driverOptions: { pollIntervalMs: 1e9 } } : {}),
  });
  const counts = { received: 0, peerReceived: 0 };
  board.nic.attach({ receive: () => counts.received++, linkChange: () => {} });
  const peer = new VirtualNic(lan, PEER_MAC, 'peer');
  peer.attach({ receive: () => counts.peerReceived++, linkChange: () => {} });
  await peer.start();
  const run = async (ms: number, each?: () => void) => {
    const end = clock.now() + ms;
    while (clock.now() < end) {
      each?.();
      await clock.advanceAsync(Math.min(STEP_MS, end - clock.now()));
      if (violations.length > 0) throw new Error(`strict mode: ${violations.join('; ')}`);
    }
  };
  let up = false;
  const started = board.nic.start().then(() => (up = true));
  while (!up) {
    if (clock.now() > 1_000) throw new Error('the driver did not start within 1 s of virtual time');
    await run(1);
  }
  await started;
  await run(10);
  return { clock, board, peer, counts, run, snapshot: () => ({ log: board.hal.log.snapshot(), at: clock.now() }) };
}

interface Window {
  frames: number;
  seconds: number;
  totals: SpiLogTotals;
}

/**
 * Receive at saturation: the sender keeps `depth` frames waiting in the chip's buffer, never more,
 * and never more than it has room for.
 */
async function receiveSaturated(chip: ChipUnderTest, turnaroundMs: number, size: number): Promise<Window> {
  const r = await rig(chip, turnaroundMs);
  const depth = size > 1000 ? 2 : 16;
  let seed = 0;
  const feed = () => {
    while (r.board.rxRoom(size, depth)) r.peer.transmit(frame(MAC, PEER_MAC, size, seed++));
  };
  await r.run(200, feed);
  const before = r.snapshot();
  const received = r.counts.received;
  await r.run(WINDOW_MS, feed);
  if (r.board.rxDropped() > 0) throw new Error(`${chip.name} receive benchmark overflowed the chip's buffer: lower the depth`);
  return { frames: r.counts.received - received, seconds: (r.clock.now() - before.at) / 1000, totals: r.board.hal.log.since(before.log) };
}

/** Transmit at saturation: the driver's queue never runs dry (8 frames handed over, not yet out). */
async function transmitSaturated(chip: ChipUnderTest, turnaroundMs: number, size: number): Promise<Window> {
  const r = await rig(chip, turnaroundMs);
  let sent = 0;
  const feed = () => {
    while (sent - r.counts.peerReceived < 8) {
      if (!r.board.nic.transmit(frame(PEER_MAC, MAC, size, sent))) throw new Error('transmit refused a frame');
      sent++;
    }
  };
  await r.run(200, feed);
  const before = r.snapshot();
  const received = r.counts.peerReceived;
  await r.run(WINDOW_MS, feed);
  return { frames: r.counts.peerReceived - received, seconds: (r.clock.now() - before.at) / 1000, totals: r.board.hal.log.since(before.log) };
}

/** Gap between isolated frames: one full-size frame's batches take ≈ 20 ms plus turnarounds. */
const ISOLATED_MS = 40;
/** Full-size frames that fit in the driver's 5 KB receive ring at once (1530 bytes each there). */
const RX_BURST = 3;

/**
 * Round trips and SPI bytes per frame in the cases the issue sets targets for: frames arriving
 * in bursts (as many as the ring holds) or one at a time (40 ms apart), and frames sent back to
 * back or one at a time.
 */
async function perFrameCosts(chip: ChipUnderTest, turnaroundMs: number, size: number, kind: 'rx-burst' | 'rx-single' | 'tx-burst' | 'tx-single', frames = 100) {
  const r = await rig(chip, turnaroundMs, { poll: false });
  const before = r.snapshot();
  if (kind === 'rx-burst') {
    for (let burst = 0; burst < frames / RX_BURST; burst++) {
      for (let i = 0; i < RX_BURST; i++) r.peer.transmit(frame(MAC, PEER_MAC, size, burst * RX_BURST + i));
      await r.run(RX_BURST * (25 + turnaroundMs));
    }
  } else if (kind === 'rx-single') {
    for (let i = 0; i < frames; i++) {
      r.peer.transmit(frame(MAC, PEER_MAC, size, i));
      await r.run(ISOLATED_MS + 2 * turnaroundMs);
    }
  } else if (kind === 'tx-burst') {
    // In bursts of 50: the driver queues up to 64 (txQueueLimit).
    for (let burst = 0; burst < frames / 50; burst++) {
      for (let i = 0; i < 50; i++) r.board.nic.transmit(frame(PEER_MAC, MAC, size, burst * 50 + i));
      await r.run(50 * (25 + turnaroundMs));
    }
  } else {
    for (let i = 0; i < frames; i++) {
      r.board.nic.transmit(frame(PEER_MAC, MAC, size, i));
      await r.run(ISOLATED_MS + 2 * turnaroundMs);
    }
  }
  await r.run(ISOLATED_MS);
  const moved = kind.startsWith('rx') ? r.counts.received : r.counts.peerReceived;
  if (moved !== frames) throw new Error(`${chip.name} ${kind}: ${moved} of ${frames} frames arrived`);
  const totals = r.board.hal.log.since(before.log);
  return { roundTrips: totals.roundTrips / frames, spiEfficiency: (frames * size) / totals.bytesWritten, overheadBytes: (totals.bytesWritten - frames * size) / frames };
}

function throughput(chip: ChipUnderTest, direction: 'RX' | 'TX', turnaroundMs: number, size: number, w: Window): Measurement[] {
  const perFrameUp = w.totals.linkBytesUp / w.frames;
  const perFrameDown = w.totals.linkBytesDown / w.frames;
  const busier = Math.max(perFrameUp, perFrameDown);
  const limit = LINK_BYTES_PER_SECOND / busier;
  const rate = w.frames / w.seconds;
  const label = `${chip.name} ${direction} ${size} B frames, bridge 1 Mbaud ${turnaroundMs} ms`;
  const note =
    `baseline = link limit: ${busier.toFixed(0)} link bytes/frame ${perFrameDown > perFrameUp ? 'board→host' : 'host→board'} ` +
    `(other way ${Math.min(perFrameUp, perFrameDown).toFixed(0)}) at ${LINK_BYTES_PER_SECOND} B/s; ` +
    `${(w.totals.roundTrips / w.frames).toFixed(3)} round trips/frame; SPI efficiency ${((w.frames * size) / w.totals.bytesWritten).toFixed(4)}`;
  return [
    { name: `${label}: frames/s`, value: rate, unit: 'frame/s', baseline: limit, note },
    { name: `${label}: payload`, value: rate * (size - ETHERNET_HEADER), unit: 'B/s', baseline: limit * (size - ETHERNET_HEADER), note: 'Ethernet payload (frame − 14-byte header)' },
  ];
}

export const benchmarks: Benchmark[] = CHIPS.flatMap((chip): Benchmark[] => [
  {
    name: `${chip.name}-throughput`,
    async run() {
      const out: Measurement[] = [];
      for (const turnaroundMs of [1, 4]) {
        for (const size of [FULL_FRAME, MIN_FRAME]) {
          out.push(...throughput(chip, 'RX', turnaroundMs, size, await receiveSaturated(chip, turnaroundMs, size)));
          out.push(...throughput(chip, 'TX', turnaroundMs, size, await transmitSaturated(chip, turnaroundMs, size)));
        }
      }
      return out;
    },
  },
  {
    name: `${chip.name}-batching`,
    async run() {
      const out: Measurement[] = [];
      for (const turnaroundMs of [1, 4]) {
        const costs = {
          'rx-burst': await perFrameCosts(chip, turnaroundMs, FULL_FRAME, 'rx-burst', 33 * RX_BURST),
          'rx-single': await perFrameCosts(chip, turnaroundMs, FULL_FRAME, 'rx-single'),
          'tx-burst': await perFrameCosts(chip, turnaroundMs, FULL_FRAME, 'tx-burst'),
          'tx-single': await perFrameCosts(chip, turnaroundMs, FULL_FRAME, 'tx-single'),
        };
        const label = (what: string) => `${chip.name} ${what}, ${FULL_FRAME} B, ${turnaroundMs} ms turnaround`;
        // The driver issue's targets: 1 round trip per frame when several wait (plus the one
        // interrupt service that finds them), ≤ 2 otherwise, ≤ 2 per transmitted frame.
        out.push({ name: label(`RX round trips/frame, bursts of ${RX_BURST}`), value: costs['rx-burst'].roundTrips, unit: 'round trip', limit: 1 + 1 / RX_BURST, higherIsBetter: false });
        out.push({ name: label('RX round trips/frame, one at a time'), value: costs['rx-single'].roundTrips, unit: 'round trip', limit: 2, higherIsBetter: false });
        out.push({ name: label('TX round trips/frame, back to back'), value: costs['tx-burst'].roundTrips, unit: 'round trip', limit: 2, higherIsBetter: false });
        out.push({ name: label('TX round trips/frame, one at a time'), value: costs['tx-single'].roundTrips, unit: 'round trip', limit: 2, higherIsBetter: false });
        for (const kind of ['rx-burst', 'rx-single', 'tx-burst', 'tx-single'] as const) {
          out.push({
            name: label(`SPI efficiency ${kind}`),
            value: costs[kind].spiEfficiency,
            unit: 'frame B / SPI B',
            limit: 0.97,
            note: `${costs[kind].overheadBytes.toFixed(1)} SPI bytes of overhead per frame`,
          });
        }
      }
      return out;
    },
  },
]);
