import { beforeEach, describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_B, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from './spi-helpers.js';
import { ENC28J60_DEFAULTS } from '../../src/drivers/enc28j60/options.js';

const checked = checkedAfterEach<Bench>();

let rxProgram = true;

function setup() {
  return checked(bench({ rxProgram }));
}

describe('ENC28J60 driver: bring-up', () => {
  it('initialises per the datasheet and errata: ring at 0, odd ERXRDPT, MAADR order, half duplex with HDLDIS, LEDs, interrupts', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a');
    await b.settle(a.board.nic.start());
    const chip = a.board.emulator;
    expect(a.board.nic.revision).toBe('B7');
    expect(chip.peek16('ERXSTL')).toBe(0);
    // 5 KB ring, then two 1.5 KB transmit buffers (the default layout).
    expect(chip.peek16('ERXNDL')).toBe(0x13ff);
    expect(chip.peek16('ERXRDPTL') & 1).toBe(1);
    expect(chip.peek16('ETXSTL')).toBe(0x1400);
    expect(chip.macAddress).toEqual(MAC_A);
    // Half duplex by default: the chip cannot auto-negotiate, and an auto-negotiating switch port
    // falls back to half duplex (DS-ENC §9.0); HDLDIS keeps our own frames out (errata #9).
    expect(chip.peek('MACON3') & 0x01).toBe(0);
    expect(chip.peekPhy('PHCON1') & 0x0100).toBe(0);
    expect(chip.peekPhy('PHCON2') & 0x0100).toBe(0x0100);
    expect(chip.peek('MACON4')).toBe(0x40);
    expect(chip.peekPhy('PHLCON')).toBe(0x3476);
    expect(chip.peek('ERXFCON')).toBe(0xa1);
    expect(chip.peek('EIE')).toBe(0x80 | 0x40 | 0x10 | 0x01);
    expect(chip.peek('ECON1') & 0x04).toBe(0x04);
    expect(a.board.nic.linkUp).toBe(true);
    expect(a.links).toEqual([true]);
  });

  it('reports a missing chip clearly (MISO reads all 0xFF)', async () => {
    const b = setup();
    const { MockHal } = await import('../../hal/mock/mock-hal.js');
    const { Enc28j60Nic } = await import('../../src/drivers/enc28j60/driver.js');
    const floating = { spiSelect() {}, spiExchange: () => 0xff, spiDeselect() {} };
    const hal = new MockHal({ clock: b.clock, slave: floating });
    const nic = new Enc28j60Nic({ hal, clock: b.clock, mac: MAC_A });
    await expect(b.settle(nic.start())).rejects.toMatchObject({ code: 'ENODEV', message: /no ENC28J60 answering/ });
  });

  it('reports a wrong chip (EREVID not an ENC28J60 revision)', async () => {
    const b = setup();
    const { Enc28j60Emulator } = await import('../../hal/enc28j60/emulator.js');
    const { MockHal } = await import('../../hal/mock/mock-hal.js');
    const { Enc28j60Nic } = await import('../../src/drivers/enc28j60/driver.js');
    const chip = new Enc28j60Emulator({ clock: b.clock, revision: 0x31 });
    const hal = new MockHal({ clock: b.clock, slave: chip, interrupt: chip });
    const nic = new Enc28j60Nic({ hal, clock: b.clock, mac: MAC_A });
    await expect(b.settle(nic.start())).rejects.toMatchObject({ code: 'ENODEV', message: /not an ENC28J60/ });
  });
});

describe.each([
  { name: 'the program on the board', program: true },
  { name: 'interrupt-service batches', program: false },
])('receiving by $name', ({ program }) => {
  beforeEach(() => {
    rxProgram = program;
  });

  describe('ENC28J60 driver: frames both ways', () => {
    it('delivers a frame of every size from 14 to 1514 bytes (64 to 1518 on the wire) in both directions between two drivers', async () => {
      const b = setup();
      const a = b.station(MAC_A, 'a');
      const c = b.station(MAC_B, 'b');
      await b.settle(Promise.all([a.board.nic.start(), c.board.nic.start()]));
      const sizes: number[] = [];
      for (let n = 14; n <= 1514; n++) sizes.push(n);
      // Three at a time each way: three full-size frames fit in the 6.5 KB receive ring.
      for (let i = 0; i < sizes.length; i += 3) {
        const group = sizes.slice(i, i + 3);
        for (const [j, n] of group.entries()) {
          expect(a.board.nic.transmit(makeFrame(MAC_B, MAC_A, n, i + j))).toBe(true);
          expect(c.board.nic.transmit(makeFrame(MAC_A, MAC_B, n, i + j + 10_000))).toBe(true);
        }
        await b.until(() => a.received.length === i + group.length && c.received.length === i + group.length, 200);
      }
      let mismatches = 0;
      for (const [i, n] of sizes.entries()) {
        // Below 60 bytes the sending chip pads with zeros (MACON3.PADCFG); the frame itself is intact.
        const expectedLength = Math.max(n, 60);
        const gotB = c.received[i]!;
        const gotA = a.received[i]!;
        if (gotB.length !== expectedLength || Buffer.compare(gotB.subarray(0, n), makeFrame(MAC_B, MAC_A, n, i)) !== 0) mismatches++;
        if (gotA.length !== expectedLength || Buffer.compare(gotA.subarray(0, n), makeFrame(MAC_A, MAC_B, n, i + 10_000)) !== 0) mismatches++;
        if (gotB.subarray(n).some((byte) => byte !== 0) || gotA.subarray(n).some((byte) => byte !== 0)) mismatches++;
      }
      expect(mismatches).toBe(0);
      expect(a.board.nic.stats().txFrames).toBe(sizes.length);
      expect(c.board.nic.stats().txFrames).toBe(sizes.length);
      expect(a.board.nic.stats().rxFrames).toBe(sizes.length);
      expect(c.board.nic.stats().rxFrames).toBe(sizes.length);
      expect(a.board.nic.stats().drops).toEqual({});
      expect(c.board.nic.stats().drops).toEqual({});
      expect(a.board.nic.lastInternalError).toBeUndefined();
      // One byte more than the chip's MAMXFL allows (1518 with the FCS) is refused, not sent.
      expect(a.board.nic.transmit(makeFrame(MAC_B, MAC_A, 1515))).toBe(false);
      expect(a.board.nic.stats().drops['bad-length']).toBe(1);
    });

    it('passes thousands of frames so the RX ring wraps many times, in order, none lost', async () => {
      const b = setup();
      const a = b.station(MAC_A, 'a');
      const peer = b.peer();
      await b.settle(a.board.nic.start());
      const total = 3000;
      let sentBytes = 0;
      for (let i = 0; i < total; i++) {
        const n = 60 + ((i * 151) % 1455);
        sentBytes += n + 6 + 4;
        peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, n, i));
        // Pace the sender at about the rate the driver drains (no overflow wanted here).
        // (three at a time: three full-size frames fit the 5 KB ring, four may not).
        if (i % 3 === 2) await b.until(() => a.received.length >= i - 1, 100, 1);
      }
      await b.until(() => a.received.length === total, 2_000);
      let mismatches = 0;
      for (let i = 0; i < total; i++) {
        const n = 60 + ((i * 151) % 1455);
        if (Buffer.compare(a.received[i]!.subarray(0, n), makeFrame(MAC_A, MAC_PEER, n, i)) !== 0) mismatches++;
      }
      expect(mismatches).toBe(0);
      expect(sentBytes / 0x1400).toBeGreaterThan(100); // the 5 KB ring wrapped >100 times
      expect(a.board.nic.stats().drops).toEqual({});
    });
  });

  describe('ENC28J60 driver: configuration variants', () => {
    it('in half duplex (MACON3 without FULDPX, PHCON1 without PDPXMD, HDLDIS, DEFER) frames still flow and late collisions are retried', async () => {
      const b = setup();
      const a = b.station(MAC_A, 'a', { driverOptions: { fullDuplex: false } });
      const peer = b.peer();
      await b.settle(a.board.nic.start());
      const chip = a.board.emulator;
      expect(chip.peek('MACON3') & 0x01).toBe(0);
      expect(chip.peekPhy('PHCON1') & 0x0100).toBe(0);
      expect(chip.peekPhy('PHCON2') & 0x0100).toBe(0x0100);
      expect(chip.peek('MACON4')).toBe(0x40);
      chip.injectTxFault('late-collision');
      chip.injectTxFault('late-collision');
      for (let i = 0; i < 5; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 500, i));
      await b.until(() => peer.received.length === 5, 200);
      expect(a.board.nic.events['tx-abort']).toBe(2);
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 500, 9));
      await b.until(() => a.received.length === 1, 50);
    });

    it('in full duplex (the option, for a switch port forced to full) sets FULDPX, PDPXMD and PAUSE, and frames flow without a strict report', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { driverOptions: { fullDuplex: true }, chip: { linkPartner: 'full-duplex' } });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    const chip = a.board.emulator;
    expect(chip.peek('MACON3') & 0x01).toBe(0x01);
    expect(chip.peekPhy('PHCON1') & 0x0100).toBe(0x0100);
    expect(chip.peek('MACON1') & 0x0c).toBe(0x0c); // TXPAUS | RXPAUS
    for (let i = 0; i < 5; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 500, i));
    await b.until(() => peer.received.length === 5, 200);
    expect(b.violations).toEqual([]);
  });

  it('in full duplex against an auto-negotiating switch port (half duplex), the strict chip reports the mismatch', async () => {
    const b = setup();
    const a = b.station(MAC_A, 'a', { driverOptions: { fullDuplex: true }, chip: { linkPartner: 'auto-negotiating' } });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 100, 1));
    await b.until(() => peer.received.length === 1, 200);
    expect(b.violations.join()).toMatch(/duplex mismatch/);
    b.violations.length = 0;
  });

  it('accepts multicast only after joinMulticast (ERXFCON.MCEN), broadcast always', async () => {
      const b = setup();
      const a = b.station(MAC_A, 'a');
      const peer = b.peer();
      await b.settle(a.board.nic.start());
      const group = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb);
      peer.nic.transmit(makeFrame(group, MAC_PEER, 100, 1));
      peer.nic.transmit(makeFrame(Uint8Array.of(255, 255, 255, 255, 255, 255), MAC_PEER, 100, 2));
      await b.run(10);
      expect(a.received.map((f) => f[14])).toEqual([2]);
      a.board.nic.joinMulticast(group);
      await b.run(5);
      peer.nic.transmit(makeFrame(group, MAC_PEER, 100, 3));
      await b.until(() => a.received.length === 2, 50);
      expect(a.board.emulator.peek('ERXFCON') & 0x02).toBe(0x02);
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
      expect(a.board.nic.events['chip-reset']).toBeUndefined();
    });
  });
});

describe('ENC28J60 driver: transmissions settled by the chip (TXIF), not by the clock', () => {
  it('in half duplex, a frame deferred behind a long burst coming in is waited for, not cut short by the next TXRST', async () => {
    const b = bench();
    const a = b.station(MAC_A, 'a', { linkModel: BRIDGE_LINK, chip: { rxWireTime: true } });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    // 30 full-size frames hold the wire for 37 ms (the ring overflows: those are counted drops);
    // the chip defers each of ours until the burst is over.
    for (let i = 0; i < 30; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 1514, i));
    await b.run(0.5);
    for (let i = 0; i < 4; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 1514, 100 + i));
    await b.until(() => peer.received.length === 4, 2_000);
    expect(a.board.nic.events['tx-preempted']).toBeUndefined();
    b.expectNoViolations();
  });

  it('in full duplex, a PAUSE frame holding the transmitter cuts short only the sends already out, then sends wait for TXIF', async () => {
    const b = bench();
    const a = b.station(MAC_A, 'a', { linkModel: BRIDGE_LINK, driverOptions: { fullDuplex: true }, chip: { linkPartner: 'full-duplex' } });
    const peer = b.peer();
    await b.settle(a.board.nic.start());
    const pause = new Uint8Array(60);
    pause.set([0x01, 0x80, 0xc2, 0x00, 0x00, 0x01], 0);
    pause.set(MAC_PEER, 6);
    pause.set([0x88, 0x08, 0x00, 0x01, 0xff, 0xff], 12); // 65535 quanta: 3.36 s
    a.board.emulator.receiveFrame(pause);
    for (let i = 0; i < 12; i++) a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 1514, i));
    await b.until(() => peer.received.length === 12, 5_000);
    // The first cut shows the wire is held; only sends out before its answer are cut too.
    expect(a.board.nic.events['tx-preempted'] ?? 0).toBeLessThanOrEqual(ENC28J60_DEFAULTS.txSendsAheadWithDelays);
    expect(a.board.nic.stats().drops).toEqual({});
    b.expectNoViolations();
  });
});
