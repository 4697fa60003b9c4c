import { describe, expect, it } from 'vitest';
import { Enc28j60Emulator } from '../../hal/enc28j60/emulator.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { crc32 } from '../../src/wire/crc32.js';
import { SpiProbe, makeFrame, strictChip } from './spi-helpers.js';

const OWN = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x01);
const PEER = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const RX_END = 0x19ff;
const TX_START = 0x1a00;

/** A chip on a LAN, configured the way the datasheet's init sequence does (§6), strict. */
function configuredChip(options: { rxEnd?: number; fullDuplex?: boolean; rxWireTime?: boolean } = {}) {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  // The far end runs the chip's duplex: a port forced to full duplex, or an auto-negotiating one (half).
  const linkPartner = options.fullDuplex === false ? 'auto-negotiating' : 'full-duplex';
  const chip = new Enc28j60Emulator({ clock, strict: true, rxWireTime: options.rxWireTime ?? false, linkPartner });
  chip.plugInto(lan);
  const peer = new VirtualNic(lan, PEER);
  const received: Uint8Array[] = [];
  peer.attach({ receive: (f) => received.push(f), linkChange: () => {} });
  void peer.start();
  const spi = new SpiProbe(chip);
  const rxEnd = options.rxEnd ?? RX_END;
  spi.write16('ERXSTL', 0);
  spi.write16('ERXNDL', rxEnd);
  spi.write16('ERXRDPTL', rxEnd);
  spi.write16('ERDPTL', 0);
  spi.write16('ETXSTL', TX_START);
  spi.write('MACON1', 0x01);
  spi.write('MACON3', 0x20 | 0x10 | 0x02 | (options.fullDuplex === false ? 0 : 0x01));
  spi.writeMac(OWN);
  if (options.fullDuplex !== false) spi.writePhy(0x00, 0x0100);
  clock.advance(0.02);
  spi.bfs('ECON1', 0x04);
  return { clock, lan, chip, spi, peer, received };
}

function deliver(chip: Enc28j60Emulator, frame: Uint8Array, options?: { badCrc?: boolean }) {
  chip.receiveFrame(frame, options);
}

function readPacketAt(spi: SpiProbe, at: number) {
  spi.write16('ERDPTL', at);
  const header = spi.readBuffer(6);
  const next = header[0]! | (header[1]! << 8);
  const count = header[2]! | (header[3]! << 8);
  const status = header[4]! | (header[5]! << 8);
  return { next, count, status, data: spi.readBuffer(count) };
}

describe('ENC28J60 emulator: SPI and register file (DS-ENC §3, §4)', () => {
  it('EREVID reads 0x06 (rev. B7) in bank 3, and the common registers answer in every bank', () => {
    const { chip, spi } = strictChip();
    expect(spi.read('EREVID')).toBe(0x06);
    for (let bank = 0; bank < 4; bank++) {
      spi.bank(bank);
      expect(spi.cycle([0x1e, 0])[1]).toBe(0x80); // ECON2 reset value: AUTOINC
      expect(spi.cycle([0x1f, 0])[1]).toBe(bank); // ECON1 shows BSEL
    }
    expect(chip.strictViolations).toEqual([]);
  });

  it('ECON1.BSEL selects the bank: the same address is a different register in each bank', () => {
    const { chip, spi } = strictChip();
    spi.write('ERDPTL', 0x11); // bank 0, 0x00
    spi.write('EHT0', 0x22); // bank 1, 0x00
    spi.write('MACON1', 0x01); // bank 2, 0x00
    spi.write('MAADR1', 0x44); // bank 3, 0x00
    const atZero = [0, 1, 2, 3].map((bank) => {
      spi.bank(bank);
      const out = spi.cycle(bank >= 2 ? [0x00, 0, 0] : [0x00, 0]);
      return out[out.length - 1];
    });
    expect(atZero).toEqual([0x11, 0x22, 0x01, 0x44]);
    expect(chip.strictViolations).toEqual([]);
  });

  it('comes out of reset with the datasheet reset values (Table 3-2)', () => {
    const { chip, spi } = strictChip();
    expect(spi.read16('ERXSTL')).toBe(0x05fa);
    expect(spi.read16('ERXNDL')).toBe(0x1fff);
    expect(spi.read16('ERXRDPTL')).toBe(0x05fa);
    expect(spi.read16('ERDPTL')).toBe(0x05fa);
    expect(spi.read('ERXFCON')).toBe(0xa1);
    expect(spi.read('MAMXFLL', true) | (spi.read('MAMXFLH', true) << 8)).toBe(1518);
    expect(spi.read('ECOCON')).toBe(0x04);
    expect(spi.read('ESTAT') & 0x01).toBe(0x01);
    expect(chip.strictViolations).toEqual([]);
  });

  it('MAC and MII registers shift out a dummy byte first; reading without it is reported', () => {
    const { chip, spi } = strictChip();
    spi.write('MACON3', 0x33);
    spi.bank(2);
    const withDummy = spi.cycle([0x02, 0, 0]);
    expect(withDummy[2]).toBe(0x33);
    expect(chip.strictViolations).toEqual([]);
    spi.cycle([0x02, 0]);
    expect(chip.strictViolations.join()).toMatch(/without the MAC\/MII dummy byte/);
  });

  it('BFS/BFC on a MAC register is applied but reported (DS-ENC §4.2.5)', () => {
    const { chip, spi } = strictChip();
    spi.bfs('MACON3', 0x10);
    expect(spi.read('MACON3', true)).toBe(0x10);
    expect(chip.strictViolations.join()).toMatch(/BFS on MAC\/MII register MACON3/);
  });

  it('BFS/BFC on ETH registers set and clear only the mask bits', () => {
    const { chip, spi } = strictChip();
    spi.write('ERXFCON', 0x00);
    spi.bfs('ERXFCON', 0x81);
    expect(spi.read('ERXFCON')).toBe(0x81);
    spi.bfc('ERXFCON', 0x01);
    expect(spi.read('ERXFCON')).toBe(0x80);
    expect(chip.strictViolations).toEqual([]);
  });

  it('ERXRDPTL is buffered until ERXRDPTH is written (DS-ENC §7.2.4)', () => {
    const { spi } = strictChip();
    spi.write('ERXRDPTL', 0x33);
    expect(spi.read16('ERXRDPTL')).toBe(0x05fa);
    spi.write('ERXRDPTH', 0x01);
    expect(spi.read16('ERXRDPTL')).toBe(0x0133);
  });

  it('reports an even ERXRDPT (errata #14) and a receive buffer not starting at 0 (errata #5)', () => {
    const { chip, spi } = strictChip();
    spi.write16('ERXRDPTL', 0x0100);
    expect(chip.strictViolations.join()).toMatch(/errata #14/);
    spi.write16('ERXSTL', 0x0100);
    spi.write16('ERXRDPTL', 0x01ff);
    spi.bfs('ECON1', 0x04);
    expect(chip.strictViolations.join()).toMatch(/errata #5/);
    expect(chip.receiveWritePointer).toBe(0); // the errata's failure: the write pointer lands at 0
  });

  it('RBM wraps ERXND → ERXST and 0x1FFF → 0; WBM wraps 0x1FFF → 0 (DS-ENC §4.2.2, §4.2.4)', () => {
    const { chip, spi } = strictChip();
    spi.write16('ERXSTL', 0);
    spi.write16('ERXNDL', 0x0fff);
    chip.memory[0x0fff] = 0xaa;
    chip.memory[0x0000] = 0xbb;
    chip.memory[0x1fff] = 0xcc;
    spi.write16('ERDPTL', 0x0fff);
    expect(spi.readBuffer(2)).toEqual([0xaa, 0xbb]);
    spi.write16('ERDPTL', 0x1fff);
    expect(spi.readBuffer(2)).toEqual([0xcc, 0xbb]);
    spi.write16('EWRPTL', 0x1fff);
    spi.writeBuffer([1, 2]);
    expect([chip.memory[0x1fff], chip.memory[0]]).toEqual([1, 2]);
    expect(spi.read16('EWRPTL')).toBe(1);
  });

  it('without ECON2.AUTOINC the buffer pointers stay put', () => {
    const { chip, spi } = strictChip();
    spi.bfc('ECON2', 0x80);
    spi.write16('ERDPTL', 0x10);
    chip.memory[0x10] = 5;
    expect(spi.readBuffer(3)).toEqual([5, 5, 5]);
    expect(spi.read16('ERDPTL')).toBe(0x10);
  });

  it('EPKTCNT is read-only and PKTDEC with nothing pending is reported', () => {
    const { chip, spi } = strictChip();
    spi.write('EPKTCNT', 3);
    expect(spi.read('EPKTCNT')).toBe(0);
    spi.bfs('ECON2', 0x40);
    expect(chip.strictViolations.length).toBe(2);
  });
});

describe('ENC28J60 emulator: receive (DS-ENC §7.2)', () => {
  it('stores a packet with the next-packet pointer, RSV byte count including the FCS, and status', () => {
    const { chip, spi } = configuredChip();
    const frame = makeFrame(OWN, PEER, 100, 1);
    deliver(chip, frame);
    expect(chip.pendingPackets).toBe(1);
    const p = readPacketAt(spi, 0);
    expect(p.count).toBe(104);
    expect(p.next).toBe(6 + 104); // even already
    expect(p.status & 0x80).toBe(0x80); // received OK
    expect(Uint8Array.from(p.data.slice(0, 100))).toEqual(frame);
    const fcs = p.data[100]! | (p.data[101]! << 8) | (p.data[102]! << 16) | (p.data[103]! << 24);
    expect(fcs >>> 0).toBe(crc32(frame));
    expect(spi.read16('ERXWRPTL')).toBe(110);
    expect(chip.strictViolations).toEqual([]);
  });

  it('pads short frames to 60 bytes and starts every packet on an even address', () => {
    const { chip, spi } = configuredChip();
    deliver(chip, makeFrame(OWN, PEER, 42));
    deliver(chip, makeFrame(OWN, PEER, 61));
    const first = readPacketAt(spi, 0);
    expect(first.count).toBe(64);
    const second = readPacketAt(spi, first.next);
    expect(second.count).toBe(65);
    expect(second.next).toBe(first.next + 6 + 65 + 1);
    expect(second.next % 2).toBe(0);
  });

  it('counts packets in EPKTCNT with PKTIF set while non-zero; PKTDEC clears PKTIF at zero', () => {
    const { chip, spi } = configuredChip();
    deliver(chip, makeFrame(OWN, PEER, 60));
    deliver(chip, makeFrame(OWN, PEER, 60));
    expect(spi.read('EPKTCNT')).toBe(2);
    expect(spi.read('EIR') & 0x40).toBe(0x40);
    spi.bfc('EIR', 0x40); // PKTIF is read-only
    expect(spi.read('EIR') & 0x40).toBe(0x40);
    spi.bfs('ECON2', 0x40);
    spi.bfs('ECON2', 0x40);
    expect(spi.read('EPKTCNT')).toBe(0);
    expect(spi.read('EIR') & 0x40).toBe(0);
  });

  it('with rxWireTime, has a frame from the LAN only once its last bit is in at 10 Mbit/s; frames queue on the wire; unplugging loses those on it', () => {
    const { clock, chip, spi, peer, lan } = configuredChip({ rxWireTime: true });
    const epktcnt = () => spi.read('EPKTCNT');
    // 100 bytes: preamble 8 + 100 + FCS 4 = 112 bytes = 89.6 µs; 20 bytes: padded to 60 → 57.6 µs.
    peer.transmit(makeFrame(OWN, PEER, 100, 1));
    peer.transmit(makeFrame(OWN, PEER, 20, 2));
    clock.advance(0.0895);
    expect(epktcnt()).toBe(0);
    clock.advance(0.0002);
    expect(epktcnt()).toBe(1);
    // The second waits for the first and the 12-byte gap: 89.6 + 9.6 + 57.6 = 156.8 µs.
    clock.advance(0.1566 - 0.0897);
    expect(epktcnt()).toBe(1);
    clock.advance(0.0003);
    expect(epktcnt()).toBe(2);
    expect(readPacketAt(spi, 0).data.slice(0, 100)).toEqual([...makeFrame(OWN, PEER, 100, 1)]);
    peer.transmit(makeFrame(OWN, PEER, 100, 3));
    chip.unplug();
    chip.plugInto(lan);
    clock.advance(1);
    expect(epktcnt()).toBe(2);
    expect(chip.stats.rxFramesStored).toBe(2);
  });

  it('wraps a packet from ERXND to ERXST, so one RBM stream reads it whole', () => {
    const { chip, spi } = configuredChip({ rxEnd: 0x00ff });
    // Consume packets until the write pointer is near the end of the 256-byte ring.
    for (let i = 0; i < 2; i++) {
      deliver(chip, makeFrame(OWN, PEER, 96, i));
      const p = readPacketAt(spi, i === 0 ? 0 : 106);
      spi.write16('ERXRDPTL', p.next - 1);
      spi.bfs('ECON2', 0x40);
    }
    expect(chip.receiveWritePointer).toBe(212);
    const frame = makeFrame(OWN, PEER, 96, 9);
    deliver(chip, frame);
    const p = readPacketAt(spi, 212);
    expect(Uint8Array.from(p.data.slice(0, 96))).toEqual(frame);
    expect(p.next).toBe((212 + 6 + 100) - 256);
  });

  it('filters per ERXFCON: unicast to MAADR, broadcast with BCEN, multicast only with MCEN', () => {
    const { chip, spi } = configuredChip();
    spi.write('ERXFCON', 0xa1); // UCEN | CRCEN | BCEN
    deliver(chip, makeFrame(OWN, PEER, 60));
    deliver(chip, makeFrame(PEER, OWN, 60));
    deliver(chip, makeFrame(BROADCAST, PEER, 60));
    deliver(chip, makeFrame(Uint8Array.of(0x01, 0, 0x5e, 0, 0, 1), PEER, 60));
    expect(chip.pendingPackets).toBe(2);
    spi.write('ERXFCON', 0xa3); // + MCEN
    deliver(chip, makeFrame(Uint8Array.of(0x01, 0, 0x5e, 0, 0, 1), PEER, 60));
    expect(chip.pendingPackets).toBe(3);
  });

  it('is promiscuous with ERXFCON = 0, and CRCEN drops frames with a bad FCS', () => {
    const { chip, spi } = configuredChip();
    spi.write('ERXFCON', 0xa1);
    deliver(chip, makeFrame(OWN, PEER, 60), { badCrc: true });
    expect(chip.pendingPackets).toBe(0);
    spi.write('ERXFCON', 0x00);
    deliver(chip, makeFrame(PEER, OWN, 60));
    deliver(chip, makeFrame(OWN, PEER, 60), { badCrc: true });
    expect(chip.pendingPackets).toBe(2);
    const first = readPacketAt(spi, 0);
    const second = readPacketAt(spi, first.next);
    expect(second.status & 0x10).toBe(0x10); // CRC error
    expect(second.status & 0x80).toBe(0);
  });

  it('drops frames longer than MAMXFL unless MACON3.HFRMEN', () => {
    const { chip, spi } = configuredChip();
    spi.write('MAMXFLL', 100);
    spi.write('MAMXFLH', 0);
    deliver(chip, makeFrame(OWN, PEER, 97));
    deliver(chip, makeFrame(OWN, PEER, 96));
    expect(chip.pendingPackets).toBe(1);
    expect(chip.stats.rxDroppedTooLong).toBe(1);
  });

  it('never writes the byte at ERXRDPT: when the ring is full the packet is lost and RXERIF set', () => {
    const { chip, spi } = configuredChip({ rxEnd: 0x01ff });
    let stored = 0;
    for (let i = 0; i < 10; i++) {
      deliver(chip, makeFrame(OWN, PEER, 100, i));
      if (chip.stats.rxDroppedOverflow === 0) stored++;
    }
    expect(stored).toBe(4); // 110 bytes each in a 512-byte ring
    expect(spi.read('EIR') & 0x01).toBe(0x01);
    expect(chip.pendingPackets).toBe(4);
    // Freeing the first packet makes room for exactly one more.
    spi.write16('ERXRDPTL', 110 - 1);
    spi.bfs('ECON2', 0x40);
    deliver(chip, makeFrame(OWN, PEER, 100, 99));
    expect(chip.pendingPackets).toBe(4);
    expect(chip.stats.rxFramesStored).toBe(5);
  });

  it('saturates EPKTCNT at 255: the 256th packet is lost with RXERIF', () => {
    const { chip, spi } = configuredChip();
    for (let i = 0; i < 256; i++) {
      deliver(chip, makeFrame(OWN, PEER, 14));
      if (i % 50 === 0) spi.bfc('EIR', 0x01);
      // keep the ring from filling: pretend packets were read by moving ERXRDPT along
      spi.write16('ERXRDPTL', chip.receiveWritePointer === 0 ? RX_END : chip.receiveWritePointer - 1);
    }
    expect(chip.pendingPackets).toBe(255);
    expect(chip.stats.rxDroppedOverflow).toBe(1);
    expect(spi.read('EIR') & 0x01).toBe(0x01);
  });

  it('RXRST stops reception and restarts the write pointer and packet count', () => {
    const { chip, spi } = configuredChip();
    deliver(chip, makeFrame(OWN, PEER, 60));
    spi.bfs('ECON1', 0x40);
    expect(spi.read('ECON1') & 0x04).toBe(0);
    spi.bfc('ECON1', 0x40);
    expect(chip.pendingPackets).toBe(0);
    expect(spi.read16('ERXWRPTL')).toBe(0);
    deliver(chip, makeFrame(OWN, PEER, 60));
    expect(chip.stats.rxDroppedRxDisabled).toBe(1);
  });
});

describe('ENC28J60 emulator: transmit (DS-ENC §7.1)', () => {
  function queueFrame(spi: SpiProbe, frame: Uint8Array, control = 0x00) {
    spi.write16('EWRPTL', TX_START);
    spi.writeBuffer([control, ...frame]);
    spi.write16('ETXNDL', TX_START + frame.length);
  }

  it('sends after the wire time, pads to 60 bytes, then clears TXRTS, sets TXIF and writes the TSV', () => {
    const { clock, chip, spi, received } = configuredChip();
    const frame = makeFrame(PEER, OWN, 42);
    queueFrame(spi, frame);
    spi.bfs('ECON1', 0x08);
    clock.advance(0.05);
    expect(spi.read('EIR') & 0x08).toBe(0);
    expect(spi.read('ECON1') & 0x08).toBe(0x08);
    clock.advance(0.1); // (8 + 64) bytes × 0.8 µs = 57.6 µs
    expect(spi.read('EIR') & 0x08).toBe(0x08);
    expect(spi.read('ECON1') & 0x08).toBe(0);
    expect(received.length).toBe(1);
    expect(received[0]!.length).toBe(60);
    expect(received[0]!.subarray(0, 42)).toEqual(frame);
    spi.write16('ERDPTL', TX_START + 42 + 1);
    const tsv = spi.readBuffer(7);
    expect(tsv[0]! | (tsv[1]! << 8)).toBe(64); // byte count with padding and FCS
    expect(tsv[2]! & 0x80).toBe(0x80); // done
    expect(chip.strictViolations).toEqual([]);
  });

  it('the per-packet control byte overrides MACON3 (POVERRIDE without PCRCEN: host supplies the FCS)', () => {
    const { clock, spi, received } = configuredChip();
    const frame = makeFrame(PEER, OWN, 60);
    const fcs = crc32(frame);
    queueFrame(spi, Uint8Array.from([...frame, fcs & 0xff, (fcs >>> 8) & 0xff, (fcs >>> 16) & 0xff, fcs >>> 24]), 0x01);
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    expect(received.length).toBe(1);
    expect(received[0]).toEqual(frame);
  });

  it('a late collision aborts with TXERIF and TSV bit 29; without TXRST the next transmission stalls (errata #12, #13)', () => {
    const { clock, chip, spi, received } = configuredChip();
    chip.injectTxFault('late-collision');
    queueFrame(spi, makeFrame(PEER, OWN, 100));
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    expect(spi.read('EIR') & 0x0a).toBe(0x0a);
    spi.write16('ERDPTL', TX_START + 101);
    expect(spi.readBuffer(7)[3]! & 0x20).toBe(0x20);
    spi.bfc('EIR', 0x0a);
    spi.bfs('ECON1', 0x08);
    clock.advance(5);
    expect(chip.transmitterStalled).toBe(true);
    expect(spi.read('ECON1') & 0x08).toBe(0x08);
    spi.bfs('ECON1', 0x80);
    spi.bfc('ECON1', 0x80);
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    expect(spi.read('EIR') & 0x08).toBe(0x08);
    expect(received.length).toBe(1);
  });

  it('pads per MACON3.PADCFG (011: to 64 bytes) and appends the CRC per TXCRCEN', () => {
    const { clock, spi, received } = configuredChip();
    spi.write('MACON3', 0x60 | 0x10 | 0x01); // PADCFG 011, TXCRCEN, FULDPX
    queueFrame(spi, makeFrame(PEER, OWN, 42));
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    expect(received[0]!.length).toBe(64);
    spi.write16('ERDPTL', TX_START + 42 + 1);
    const tsv = spi.readBuffer(7);
    expect(tsv[0]! | (tsv[1]! << 8)).toBe(68); // 64 + FCS
  });

  it('with MACON3.TXCRCEN off the host supplies the FCS: a right one is sent, a wrong one is not', () => {
    const { clock, chip, spi, received } = configuredChip();
    spi.write('MACON3', 0x01); // no padding, no CRC; FULDPX
    const frame = makeFrame(PEER, OWN, 60, 3);
    const fcs = crc32(frame);
    const withFcs = (value: number) => Uint8Array.from([...frame, value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24]);
    queueFrame(spi, withFcs(fcs));
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    queueFrame(spi, withFcs(fcs ^ 1));
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    expect(received).toEqual([frame]);
    expect(chip.stats.txFramesLost).toBe(1);
  });

  it('aborts a frame longer than MAMXFL (unless HFRMEN): TXERIF, TSV "length out of range", nothing on the wire', () => {
    const { clock, spi, received } = configuredChip();
    spi.write('MAMXFLL', 100);
    spi.write('MAMXFLH', 0);
    queueFrame(spi, makeFrame(PEER, OWN, 97)); // 101 with the FCS
    spi.bfs('ECON1', 0x08);
    clock.advance(1);
    expect(spi.read('EIR') & 0x0a).toBe(0x0a);
    spi.write16('ERDPTL', TX_START + 97 + 1);
    expect(spi.readBuffer(7)[2]! & 0x40).toBe(0x40);
    expect(received).toEqual([]);
  });

  it('reports MACON3.FULDPX disagreeing with PHCON1.PDPXMD', () => {
    const { clock, chip, spi } = configuredChip();
    spi.writePhy(0x00, 0x0000);
    clock.advance(0.02);
    queueFrame(spi, makeFrame(PEER, OWN, 60));
    spi.bfs('ECON1', 0x08);
    expect(chip.strictViolations.join()).toMatch(/FULDPX/);
  });
});

describe('ENC28J60 emulator: PHY, interrupts, reset (DS-ENC §3.3, §12, §11)', () => {
  it('an MII read keeps MISTAT.BUSY for 10.24 µs; reading MIRD early is reported', () => {
    const { clock, chip, spi } = strictChip();
    spi.startPhyRead(0x02);
    expect(spi.read('MISTAT', true) & 0x01).toBe(1);
    clock.advance(0.010);
    expect(spi.read('MISTAT', true) & 0x01).toBe(1);
    clock.advance(0.001);
    expect(spi.read('MISTAT', true) & 0x01).toBe(0);
    expect(spi.finishPhyRead()).toBe(0x0083); // PHID1
    expect(chip.strictViolations).toEqual([]);
    spi.startPhyRead(0x03);
    spi.finishPhyRead();
    expect(chip.strictViolations.join()).toMatch(/BUSY/);
  });

  it('PHSTAT2.LSTAT follows the cable; a link change sets LINKIF (with PGEIE|PLNKIE) and reading PHIR clears it', () => {
    const { clock, chip, spi } = configuredChip();
    const edges: boolean[] = [];
    chip.onInterruptChange((a) => edges.push(a));
    spi.writePhy(0x12, 0x0012);
    clock.advance(0.02);
    spi.write('EIE', 0x80 | 0x10);
    spi.startPhyRead(0x11);
    clock.advance(0.02);
    expect(spi.finishPhyRead() & 0x0400).toBe(0x0400);
    chip.setLinkUp(false);
    expect(spi.read('EIR') & 0x10).toBe(0x10);
    expect(chip.interruptAsserted).toBe(true);
    spi.startPhyRead(0x13);
    clock.advance(0.02);
    expect(spi.finishPhyRead() & 0x0014).toBe(0x0014);
    expect(spi.read('EIR') & 0x10).toBe(0);
    expect(chip.interruptAsserted).toBe(false);
    expect(edges).toEqual([true, false]);
    spi.startPhyRead(0x11);
    clock.advance(0.02);
    expect(spi.finishPhyRead() & 0x0400).toBe(0);
  });

  it('an MII write (MIWRH starts it) keeps MISTAT.BUSY for 10.24 µs before the PHY register changes; writing MIWR while busy is reported', () => {
    const { clock, chip, spi } = strictChip();
    spi.writePhy(0x14, 0x3476); // PHLCON
    expect(spi.read('MISTAT', true) & 0x01).toBe(1);
    expect(chip.peekPhy('PHLCON')).toBe(0x3422);
    clock.advance(0.011);
    expect(spi.read('MISTAT', true) & 0x01).toBe(0);
    expect(chip.peekPhy('PHLCON')).toBe(0x3476);
    expect(chip.strictViolations).toEqual([]);
    spi.writePhy(0x14, 0x3422);
    spi.write('MIWRL', 0x00);
    expect(chip.strictViolations.join()).toMatch(/MIWRL written while MISTAT.BUSY/);
  });

  it('LINKIF needs PHIE.PGEIE: with PLNKIE alone a link change sets PHIR.PLNKIF but not EIR.LINKIF', () => {
    const { clock, chip, spi } = configuredChip();
    spi.writePhy(0x12, 0x0010); // PLNKIE only
    clock.advance(0.02);
    chip.setLinkUp(false);
    expect(spi.read('EIR') & 0x10).toBe(0);
    expect(chip.peekPhy('PHIR') & 0x0010).toBe(0x0010);
  });

  it('INT is asserted while INTIE and an enabled flag are set; clearing INTIE releases it', () => {
    const { chip, spi } = configuredChip();
    spi.write('EIE', 0x40); // PKTIE only
    deliver(chip, makeFrame(OWN, PEER, 60));
    expect(chip.interruptAsserted).toBe(false);
    spi.bfs('EIE', 0x80);
    expect(chip.interruptAsserted).toBe(true);
    expect(spi.read('ESTAT') & 0x80).toBe(0x80);
    spi.bfc('EIE', 0x80);
    expect(chip.interruptAsserted).toBe(false);
    spi.bfs('EIE', 0x80);
    spi.bfs('ECON2', 0x40);
    expect(chip.interruptAsserted).toBe(false);
  });

  it('after a hard reset CLKRDY stays low for the oscillator start-up; other access before it is reported', () => {
    const { clock, chip, spi } = strictChip();
    chip.hardReset();
    expect(spi.read('ESTAT') & 0x01).toBe(0);
    expect(chip.strictViolations).toEqual([]);
    spi.cycle([0x1f, 0]);
    expect(chip.strictViolations.join()).toMatch(/before CLKRDY/);
    clock.advance(0.3);
    expect(spi.read('ESTAT') & 0x01).toBe(1);
  });

  it('after SRC, CLKRDY reads 1 at once (errata #2) but access within 1 ms is reported', () => {
    const { clock, chip, spi } = strictChip();
    spi.write('ERXFCON', 0);
    spi.softReset();
    expect(spi.cycle([0x1d, 0])[1]! & 0x01).toBe(0);
    expect(chip.strictViolations.join()).toMatch(/errata #2/);
    clock.advance(1);
    expect(spi.read('ERXFCON')).toBe(0xa1);
  });

  it('MAADR is byte-scrambled: MAADR5 (bank 3, 0x04) is the first octet', () => {
    const { chip } = configuredChip();
    expect(chip.macAddress).toEqual(OWN);
    expect(chip.peek('MAADR5')).toBe(OWN[0]);
  });
});
