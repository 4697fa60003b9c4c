import { beforeEach, describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import type { LinkModel } from '../../hal/mock/mock-hal.js';
import { makeFrame } from './spi-helpers.js';

const checked = checkedAfterEach<Bench>();

let linkModel: LinkModel | undefined;
let rxProgram = true;

async function started(options = {}) {
  const b = bench();
  checked(b);
  const driverOptions = { rxProgram, ...options };
  const a = b.station(MAC_A, 'a', { driverOptions, ...(linkModel ? { linkModel } : {}) });
  const peer = b.peer();
  await b.settle(a.board.nic.start());
  return { b, a, peer, nic: a.board.nic, chip: a.board.emulator, hal: a.board.hal };
}

/** After a disturbance, frames must flow again both ways. */
async function expectTraffic(ctx: Awaited<ReturnType<typeof started>>, count = 10) {
  const { b, a, peer, nic } = ctx;
  const rxBefore = a.received.length;
  const txBefore = peer.received.length;
  for (let i = 0; i < count; i++) {
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 200, 50_000 + i));
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 200, 60_000 + i))).toBe(true);
    await b.run(3);
  }
  await b.until(() => a.received.length === rxBefore + count && peer.received.length === txBefore + count, 1_000);
  expect(a.received.at(-1)!.subarray(0, 200)).toEqual(makeFrame(MAC_A, MAC_PEER, 200, 50_000 + count - 1));
}

// Every disturbance twice: SPI batches running at once, and over the serial bridge's speed and
// latency (batches in flight when it strikes); and receiving both ways, by the program on the
// board and by interrupt-service batches.
describe.each([
  { name: 'instant SPI, receive program', model: undefined, program: true },
  { name: 'bridge 1 Mbaud, 1 ms turnaround, receive program', model: BRIDGE_LINK, program: true },
  { name: 'instant SPI, receive batches', model: undefined, program: false },
  { name: 'bridge 1 Mbaud, 1 ms turnaround, receive batches', model: BRIDGE_LINK, program: false },
])('ENC28J60 driver: recovery without restart ($name)', ({ model, program }) => {
  beforeEach(() => {
    linkModel = model;
    rxProgram = program;
  });

  it('given a flood that overflows the RX ring, it counts the loss (RXERIF), drains, and keeps receiving', async () => {
    const ctx = await started();
    const { b, a, peer, nic, chip } = ctx;
    for (let i = 0; i < 40; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 1000, i));
    expect(chip.stats.rxDroppedOverflow).toBeGreaterThan(0);
    await b.until(() => a.received.length === chip.stats.rxFramesStored, 500);
    await b.run(5);
    expect(nic.stats().drops['rx-overflow']).toBeGreaterThanOrEqual(1);
    expect(chip.peek('EIR') & 0x01).toBe(0); // RXERIF acknowledged
    // What was received is intact and in order.
    let last = -1;
    for (const frame of a.received) {
      const seed = frame[14]! | (frame[15]! << 8);
      expect(seed).toBeGreaterThan(last);
      expect(frame).toEqual(makeFrame(MAC_A, MAC_PEER, 1000, seed));
      last = seed;
    }
    await expectTraffic(ctx);
  });

  it('given a sustained flood, overflow repeats and every stored frame still reaches the stack', async () => {
    const ctx = await started();
    const { b, a, peer, chip } = ctx;
    for (let burst = 0; burst < 20; burst++) {
      for (let i = 0; i < 15; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 600, burst * 100 + i));
      await b.run(2);
    }
    await b.until(() => a.received.length === chip.stats.rxFramesStored, 1_000);
    expect(chip.stats.rxDroppedOverflow).toBeGreaterThan(20);
    await expectTraffic(ctx);
  });

  it('given the link goes down and up, it reports both, refuses to transmit while down, then carries on', async () => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    chip.setLinkUp(false);
    await b.until(() => !nic.linkUp, 50, 0.1);
    expect(a.links).toEqual([true, false]);
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 60))).toBe(false);
    expect(nic.stats().drops['link-down']).toBe(1);
    chip.setLinkUp(true);
    await b.until(() => nic.linkUp, 50, 0.1);
    expect(a.links).toEqual([true, false, true]);
    for (let flap = 0; flap < 5; flap++) {
      chip.setLinkUp(false);
      await b.run(1);
      chip.setLinkUp(true);
      await b.run(1);
    }
    await b.until(() => nic.linkUp && a.links.at(-1) === true, 200);
    await expectTraffic(ctx);
  });

  it('given the chip is reset underneath (RESET pin), it notices on the next poll and re-initialises', async () => {
    const ctx = await started({ pollIntervalMs: 20 });
    const { b, nic, chip } = ctx;
    await b.run(5);
    chip.hardReset();
    expect(chip.peek('ECON1') & 0x04).toBe(0); // receiver off, interrupts off: the chip went silent
    await b.until(() => (nic.events['chip-reset'] ?? 0) === 1 && chip.peek('ECON1') & 0x04 ? true : false, 200);
    expect(chip.macAddress).toEqual(MAC_A);
    await expectTraffic(ctx);
  });

  it('given a reset in the middle of two-way traffic, it recovers (frames in flight may be lost)', async () => {
    const ctx = await started({ pollIntervalMs: 20 });
    const { b, a, peer, nic, chip, hal } = ctx;
    // As fast as the SPI path carries 400-byte frames both ways.
    const paceMs = linkModel ? 12 : 0.5;
    let resetAt = -1;
    for (let i = 0; i < 40; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 400, i));
      nic.transmit(makeFrame(MAC_PEER, MAC_A, 400, 1000 + i));
      if (i === 20) {
        chip.hardReset();
        resetAt = b.clock.now();
      }
      await b.run(paceMs, 0.25);
    }
    await b.run(100);
    expect(nic.events['chip-reset']).toBe(1);
    // Batches built before the driver could know of the reset (issued before its re-initialising
    // SRC) still reach the chip: during the 300 µs oscillator start-up, or with a PKTDEC for a
    // packet the reset wiped. The reset's doing, not the driver's: only those are excused.
    const entries = hal.log.entries;
    const srcIssuedAt = entries.find((e) => e.issuedAt >= resetAt && e.batch.some((t) => t.write?.length === 1 && t.write[0] === 0xff))?.issuedAt;
    expect(srcIssuedAt).toBeDefined();
    const causedByTheReset = (v: string) => {
      const at = Number(/@([\d.]+)ms\]/.exec(v)?.[1] ?? NaN);
      return entries.some((e) => e.issuedAt < srcIssuedAt! && e.executedAt >= resetAt && Math.abs(e.executedAt - at) < 1e-4);
    };
    b.violations.splice(0, b.violations.length, ...b.violations.filter((v) => !causedByTheReset(v)));
    expect(a.received.length).toBeGreaterThan(10);
    await expectTraffic(ctx);
  });

  /** A station on the LAN that sends frames of any length (a jumbo-frame host, a bad NIC). */
  function sendRaw(b: Bench, frames: Uint8Array[]) {
    const port = b.lan.plug({ label: 'jumbo', deliver: () => undefined });
    for (const frame of frames) port.send(frame);
  }

  it('given frames of 1600 and 9000 bytes from the LAN, the chip cuts them at MAMXFL and its CRC filter discards them (DS-ENC Register 6-2): the frames around them arrive, no reset', async () => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    const before = makeFrame(MAC_A, MAC_PEER, 200, 1);
    const after = makeFrame(MAC_A, MAC_PEER, 200, 2);
    sendRaw(b, [before, makeFrame(MAC_A, MAC_PEER, 1600, 3), makeFrame(MAC_A, MAC_PEER, 9000, 4), after]);
    await b.until(() => a.received.length === 2, 500);
    expect(a.received.map((f) => f.subarray(0, 200))).toEqual([before, after]);
    expect(chip.stats.rxDroppedTooLong).toBe(2);
    expect(nic.events['rx-reset']).toBeUndefined();
    expect(nic.stats().drops['rx-ring-corrupt']).toBeUndefined();
    await expectTraffic(ctx);
  });

  it('given a chip that stores frames over MAMXFL (MACON3.HFRMEN set underneath the driver), a 1600-byte frame is a counted drop (rx-too-long) skipped by its next packet pointer and a 9000-byte one an overflow: the frames around them arrive, no reset', async () => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    chip.poke('MACON3', chip.peek('MACON3') | 0x04);
    const frames = [makeFrame(MAC_A, MAC_PEER, 200, 1), makeFrame(MAC_A, MAC_PEER, 1600, 2), makeFrame(MAC_A, MAC_PEER, 200, 3), makeFrame(MAC_A, MAC_PEER, 9000, 4), makeFrame(MAC_A, MAC_PEER, 200, 5)];
    sendRaw(b, frames.slice(0, 3));
    await b.until(() => a.received.length === 2, 500);
    sendRaw(b, frames.slice(3));
    await b.until(() => a.received.length === 3, 500);
    expect(a.received.map((f) => f.subarray(0, 200))).toEqual([frames[0], frames[2], frames[4]]);
    expect(chip.stats.rxDroppedTooLong).toBe(0);
    expect(nic.stats().drops['rx-too-long']).toBe(1);
    expect(chip.stats.rxDroppedOverflow).toBe(1);
    expect(nic.stats().drops['rx-overflow']).toBe(1);
    expect(nic.events['rx-reset']).toBeUndefined();
    expect(nic.stats().drops['rx-ring-corrupt']).toBeUndefined();
    await expectTraffic(ctx);
  });

  it('given a corrupt next-packet pointer in the ring, it resets the receiver (RXRST) and keeps going', async () => {
    const ctx = await started({ pollIntervalMs: 20 });
    const { b, a, peer, nic, chip, hal } = ctx;
    hal.dropInterruptEdges = true; // the driver will only look at the ring on its next poll
    for (let i = 0; i < 3; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, i));
    chip.memory[0] = 0x77; // next-packet pointer of the first packet: 0x1377, nonsense
    chip.memory[1] = 0x13;
    // Frames that reach the chip before the RXRST batch has run are wiped with the ring: wait until
    // the reset's batches are done (nothing in flight) and the receiver is enabled again.
    await b.until(() => (nic.events['rx-reset'] ?? 0) === 1 && hal.batchesInFlight === 0 && (chip.peek('ECON1') & 0x04) !== 0, 200);
    hal.dropInterruptEdges = false;
    expect(nic.stats().drops['rx-ring-corrupt']).toBe(1);
    expect(a.received.length).toBe(0);
    await expectTraffic(ctx);
  });

  it('given missed interrupt edges, the poll safety net still receives everything', async () => {
    const ctx = await started({ pollIntervalMs: 10 });
    const { b, a, peer, hal } = ctx;
    hal.dropInterruptEdges = true;
    for (let i = 0; i < 20; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, i));
      await b.run(3);
    }
    await b.until(() => a.received.length === 20, 100);
  });

  it('given a late collision (errata #13), it retransmits the frame once', async () => {
    const ctx = await started();
    const { b, peer, nic, chip } = ctx;
    chip.injectTxFault('late-collision');
    nic.transmit(makeFrame(MAC_PEER, MAC_A, 300, 1));
    await b.until(() => peer.received.length === 1, 100);
    await b.run(20); // the driver learns of the completion a round trip after the wire
    expect(nic.events['tx-abort']).toBe(1);
    expect(nic.stats().txFrames).toBe(1);
    await expectTraffic(ctx);
  });

  it('given a stuck transmitter (errata #12), it times out, resets TX and retransmits', async () => {
    const ctx = await started({ txTimeoutMs: 50 });
    const { b, peer, nic, chip } = ctx;
    chip.injectTxFault('stall');
    nic.transmit(makeFrame(MAC_PEER, MAC_A, 300, 1));
    await b.run(20);
    expect(chip.transmitterStalled).toBe(true);
    await b.until(() => peer.received.length === 1, 200);
    expect(nic.events['tx-timeout']).toBe(1);
    await expectTraffic(ctx);
  });

  it('given a stuck transmitter with more frames queued, the next send (TXRST first) frees it and nothing is lost', async () => {
    // Full duplex: a send follows the stuck one after its wire time (in half duplex it waits for
    // TXIF and the stall takes txTimeoutMs, as the test before this one shows).
    const ctx = await started({ fullDuplex: true });
    const { b, peer, nic, chip } = ctx;
    chip.injectTxFault('stall');
    for (let i = 0; i < 5; i++) nic.transmit(makeFrame(MAC_PEER, MAC_A, 300, i));
    await b.until(() => peer.received.length === 5, 200);
    const seeds = peer.received.map((f) => f[14]!).sort();
    expect(seeds).toEqual([0, 1, 2, 3, 4]);
    expect(nic.events['tx-preempted']).toBe(1);
  });

  it('given a HAL timeout mid-traffic, it re-initialises and carries on', async () => {
    const ctx = await started();
    const { b, nic, hal } = ctx;
    hal.injectFault('ETIMEDOUT', { executed: true });
    nic.transmit(makeFrame(MAC_PEER, MAC_A, 100)); // its batch times out (after it ran)
    await b.run(50);
    await expectTraffic(ctx);
    expect(nic.events['error-ETIMEDOUT']).toBe(1);
  });

  it('given the serial link is lost and restored, it reports the link down, pauses, then re-initialises and reports it up', async () => {
    const ctx = await started();
    const { b, a, nic, hal } = ctx;
    hal.loseLink('cable pulled');
    expect(nic.linkUp).toBe(false);
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 60))).toBe(false);
    await b.run(300);
    hal.restoreLink(true);
    await b.until(() => nic.linkUp, 200);
    expect(nic.events['hal-link-restored']).toBe(1);
    expect(a.links).toEqual([true, false, true]);
    await expectTraffic(ctx);
  });
});
