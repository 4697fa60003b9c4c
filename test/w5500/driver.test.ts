import { describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_B, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from '../enc28j60/spi-helpers.js';
import { sameBytes } from './spi-probe.js';
import { MockHal } from '../../hal/mock/mock-hal.js';
import { W5500Emulator } from '../../hal/w5500/emulator.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';

const checked = checkedAfterEach<Bench>();

function setup(): Bench {
  return checked(bench());
}

const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

describe('W5500 driver: bring-up', () => {
  it('resets the chip and sets it up as the datasheet says: our MAC, all 16 KB to socket 0, MACRAW with MFEN, RECV in Sn_IMR, INTn for socket 0', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a');
    await b.settle(a.board.nic.start());
    const chip = a.board.emulator;
    expect(chip.macAddress).toEqual(MAC_A);
    expect(chip.peek('MR')).toBe(0x10); // ping block: the chip's own echo reply is off
    expect([chip.peekSocket(0, 'Sn_RXBUF_SIZE'), chip.peekSocket(0, 'Sn_TXBUF_SIZE')]).toEqual([16, 16]);
    for (let n = 1; n < 8; n++) expect([chip.peekSocket(n, 'Sn_RXBUF_SIZE'), chip.peekSocket(n, 'Sn_TXBUF_SIZE')]).toEqual([0, 0]);
    expect(chip.peekSocket(0, 'Sn_MR')).toBe(0x04 | 0x80 | 0x10); // MACRAW, MFEN, MIP6B
    expect(chip.peekSocket(0, 'Sn_SR')).toBe(0x42);
    expect(chip.peekSocket(0, 'Sn_IMR')).toBe(0x04);
    expect(chip.peek('SIMR')).toBe(0x01);
    expect(chip.peek('IMR')).toBe(0x00);
    expect(a.board.nic.linkUp).toBe(true);
    expect(a.links).toEqual([true]);
  });

  it.each([
    { miso: 'ones' as const, says: /no W5500 answering on SPI \(VERSIONR reads 0xff: MISO is floating high\) — check the SPI wiring/ },
    { miso: 'zeros' as const, says: /no W5500 answering on SPI \(VERSIONR reads 0x00: MISO is held low\)/ },
  ])('says in one line that no chip answers (MISO all $miso)', async ({ miso, says }) => {
    const b = setup();
    const a = b.station(MAC_A, 'a');
    a.board.emulator.setMiso(miso);
    await expect(b.settle(a.board.nic.start())).rejects.toMatchObject({ code: 'ENODEV', message: expect.stringMatching(says) });
  });

  it('says in one line that the chip is not a W5500 (VERSIONR or RTR after reset)', async () => {
    const b = setup();
    const chip = new W5500Emulator({ clock: b.clock, version: 0x51 });
    const hal = new MockHal({ clock: b.clock, slave: chip, interrupt: chip });
    const nic = new W5500Nic({ hal, clock: b.clock, mac: MAC_A });
    await expect(b.settle(nic.start())).rejects.toMatchObject({ code: 'ENODEV', message: expect.stringMatching(/not a W5500 \(VERSIONR 0x51, RTR 0x07d0 after reset; expected 0x04 and 0x07d0\)/) });
  });

  it('in promiscuous mode opens MACRAW without MFEN or MIP6B, and takes frames for other stations', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { driverOptions: { promiscuous: true } });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    expect(a.board.emulator.peekSocket(0, 'Sn_MR')).toBe(0x04);
    peer.nic.transmit(makeFrame(MAC_B, MAC_PEER, 100, 1));
    await b.until(() => a.received.length === 1, 50);
  });
});

/** Every size from 14 to 1514 bytes; over the bridge model (100 kB/s of virtual time) the edges and a spread between. */
const EVERY_SIZE = Array.from({ length: 1501 }, (_, i) => 14 + i);
const SOME_SIZES = [14, 15, 59, 60, 61, 62, 63, 100, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1025, 1497, 1500, 1512, 1513, 1514];

describe.each([
  { name: 'instant SPI', model: undefined, sizes: EVERY_SIZE, frames: 3000, stepMs: 0.5 },
  { name: 'bridge 1 Mbaud, 1 ms turnaround', model: BRIDGE_LINK, sizes: SOME_SIZES, frames: 400, stepMs: 2 },
])('W5500 driver: frames both ways ($name)', ({ model, sizes, frames, stepMs }) => {
  it(`delivers frames of ${sizes.length} sizes from 14 to 1514 bytes in both directions between two drivers`, async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { linkModel: model });
    const c = b.station(MAC_B, 'b', { linkModel: model });
    await b.settle(Promise.all([a.board.nic.start(), c.board.nic.start()]));
    for (let i = 0; i < sizes.length; i += 8) {
      const group = sizes.slice(i, i + 8);
      for (const [j, n] of group.entries()) {
        expect(a.board.nic.transmit(makeFrame(MAC_B, MAC_A, n, i + j))).toBe(true);
        expect(c.board.nic.transmit(makeFrame(MAC_A, MAC_B, n, i + j + 10_000))).toBe(true);
      }
      await b.until(() => a.received.length === i + group.length && c.received.length === i + group.length, 2_000, stepMs);
    }
    let mismatches = 0;
    for (const [i, n] of sizes.entries()) {
      // Below 60 bytes the sending chip pads with zeros; the frame itself is intact.
      const expectedLength = Math.max(n, 60);
      const gotB = c.received[i]!;
      const gotA = a.received[i]!;
      if (gotB.length !== expectedLength || !sameBytes(gotB.subarray(0, n), makeFrame(MAC_B, MAC_A, n, i))) mismatches++;
      if (gotA.length !== expectedLength || !sameBytes(gotA.subarray(0, n), makeFrame(MAC_A, MAC_B, n, i + 10_000))) mismatches++;
      if (gotB.subarray(n).some((byte) => byte !== 0) || gotA.subarray(n).some((byte) => byte !== 0)) mismatches++;
    }
    expect(mismatches).toBe(0);
    // The last frames count as sent once Sn_TX_RD has been read past them (a check after their wire time).
    await b.until(() => a.board.nic.stats().txFrames === sizes.length && c.board.nic.stats().txFrames === sizes.length, 50, stepMs);
    for (const station of [a, c]) {
      expect(station.board.nic.stats().txFrames).toBe(sizes.length);
      expect(station.board.nic.stats().rxFrames).toBe(sizes.length);
      expect(station.board.nic.stats().drops).toEqual({});
      expect(station.board.nic.lastInternalError).toBeUndefined();
    }
    // MACRAW carries at most 1514 bytes (DS-W §4.2 Sn_MSSR): one more is refused, not sent.
    expect(a.board.nic.transmit(makeFrame(MAC_B, MAC_A, 1515))).toBe(false);
    expect(a.board.nic.stats().drops['bad-length']).toBe(1);
  }, 60_000);

  it(`passes ${frames} frames each way so both 16 KB buffers and the 16-bit pointers wrap many times, in order, none lost`, async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { linkModel: model });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    const total = frames;
    const size = (i: number) => 60 + ((i * 151) % 1455);
    let bytes = 0;
    for (let i = 0; i < total; i++) {
      bytes += size(i) + 2;
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, size(i), i));
      expect(a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, size(i), i))).toBe(true);
      // Paced so that neither the chip's RX buffer nor the driver's queue overflows.
      if (i % 8 === 7) await b.until(() => a.received.length >= i - 7 && peer.received.length >= i - 7, 5_000, stepMs);
    }
    await b.until(() => a.received.length === total && peer.received.length === total, 10_000, stepMs);
    let mismatches = 0;
    for (let i = 0; i < total; i++) {
      if (!sameBytes(a.received[i]!.subarray(0, size(i)), makeFrame(MAC_A, MAC_PEER, size(i), i))) mismatches++;
      if (!sameBytes(peer.received[i]!.subarray(0, size(i)), makeFrame(MAC_PEER, MAC_A, size(i), i))) mismatches++;
    }
    expect(mismatches).toBe(0);
    expect(bytes / 16384).toBeGreaterThan(frames / 30); // the buffers wrapped that many times
    expect(bytes / 65536).toBeGreaterThan(frames / 120); // and so did the pointers
    expect(a.board.nic.stats().drops).toEqual({});
    // The last frame counts as sent once Sn_TX_RD has been read past it (a check batch after its wire time).
    await b.until(() => a.board.nic.stats().txFrames === total, 50, stepMs);
  }, 120_000);

  it('given a flood that fills the RX buffer, the chip drops what does not fit, the driver drains it and keeps receiving', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { linkModel: model });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    const chip = a.board.emulator;
    for (let i = 0; i < 40; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 1000, i));
    expect(chip.stats.rxDroppedFull).toBeGreaterThan(0);
    await b.until(() => a.received.length === chip.stats.rxFramesStored, 2_000);
    let last = -1;
    for (const frame of a.received) {
      const seed = frame[14]! | (frame[15]! << 8);
      expect(seed).toBeGreaterThan(last);
      expect(sameBytes(frame, makeFrame(MAC_A, MAC_PEER, 1000, seed))).toBe(true);
      last = seed;
    }
    for (let i = 0; i < 5; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, 100 + i));
    await b.until(() => a.received.length === chip.stats.rxFramesStored && a.received.at(-1)![14] === 104, 500);
    expect(a.board.nic.stats().drops).toEqual({});
  });
});

describe('W5500 driver: filters and options', () => {
  it('takes broadcasts but not multicast with MFEN; a joined group opens socket 0 again without MFEN', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a');
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    const group = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb);
    peer.nic.transmit(makeFrame(group, MAC_PEER, 100, 1));
    peer.nic.transmit(makeFrame(BROADCAST, MAC_PEER, 100, 2));
    await b.run(10);
    expect(a.received.map((f) => f[14])).toEqual([2]);
    a.board.nic.joinMulticast(group);
    await b.until(() => a.board.emulator.peekSocket(0, 'Sn_MR') === (0x04 | 0x10) && a.board.emulator.peekSocket(0, 'Sn_SR') === 0x42, 50);
    expect(a.board.nic.events['socket-reopen']).toBe(1);
    peer.nic.transmit(makeFrame(group, MAC_PEER, 100, 3));
    await b.until(() => a.received.length === 2, 50);
    a.board.nic.leaveMulticast(group);
    await b.until(() => a.board.emulator.peekSocket(0, 'Sn_MR') === 0x94, 50);
  });

  it('without an interrupt line (INTn not wired), polls on a timer and still receives everything', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { interruptWired: false });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    expect(a.board.emulator.peek('SIMR')).toBe(0x00);
    for (let i = 0; i < 20; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, i));
      await b.run(3);
    }
    await b.until(() => a.received.length === 20, 50);
    expect(a.received.map((f) => f[14])).toEqual([...Array(20).keys()]);
  });

  it('a consumer that throws does not disturb the chip', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a');
    const peer = b.peer();
    let calls = 0;
    a.board.nic.attach({
      receive: () => {
        calls++;
        throw new Error('consumer bug');
      },
      linkChange: () => {},
    });
    await b.settle(a.board.nic.start());
    for (let i = 0; i < 3; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, i));
    await b.until(() => calls === 3, 50);
    expect(a.board.nic.events['receive-handler-threw']).toBe(3);
    expect(a.board.nic.events['reinit']).toBeUndefined();
  });
});
