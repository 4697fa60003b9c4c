import { describe, expect, it } from 'vitest';
import { Enc28j60Emulator, type LinkPartner } from '../../hal/enc28j60/emulator.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { crc32 } from '../../src/wire/crc32.js';
import { SpiProbe, makeFrame } from './spi-helpers.js';

/**
 * The ENC28J60 emulator behaves as the silicon does where a driver could get it wrong: the link's
 * duplex, deferral, collisions, the inter-packet gap, PAUSE, the errata as behaviour, and the
 * register details. Each test cites the datasheet (DS39662E, "DS-ENC") or erratum (DS80349C).
 */

const OWN = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x01);
const PEER = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const RX_END = 0x19ff;
const TX_START = 0x1a00;

interface Setup {
  fullDuplex?: boolean;
  linkPartner?: LinkPartner;
  rxWireTime?: boolean;
  hdldis?: boolean;
  macon1?: number;
  strict?: boolean;
  pktifMissRate?: number;
  patternMatchLeakRate?: number;
}

/** A chip on a LAN configured per DS-ENC §6 (half duplex unless asked), with a peer station. */
function chipOnLan(o: Setup = {}) {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const full = o.fullDuplex ?? false;
  const chip = new Enc28j60Emulator({
    clock,
    strict: o.strict ?? true,
    rxWireTime: o.rxWireTime ?? true,
    linkPartner: o.linkPartner ?? (full ? 'full-duplex' : 'auto-negotiating'),
    random: new SeededRandom(7),
    pktifMissRate: o.pktifMissRate,
    patternMatchLeakRate: o.patternMatchLeakRate,
  });
  chip.plugInto(lan);
  const peer = new VirtualNic(lan, PEER);
  const received: Uint8Array[] = [];
  peer.attach({ receive: (f) => received.push(f), linkChange: () => {} });
  void peer.start();
  const spi = new SpiProbe(chip);
  spi.write16('ERXSTL', 0);
  spi.write16('ERXNDL', RX_END);
  spi.write16('ERXRDPTL', RX_END);
  spi.write16('ERDPTL', 0);
  spi.write16('ETXSTL', TX_START);
  spi.write('MACON1', o.macon1 ?? 0x01);
  spi.write('MACON3', 0x20 | 0x10 | 0x02 | (full ? 0x01 : 0));
  spi.write('MABBIPG', full ? 0x15 : 0x12);
  spi.writeMac(OWN);
  spi.writePhy(0x00, full ? 0x0100 : 0);
  clock.advance(0.02);
  if (!full && (o.hdldis ?? true)) {
    spi.writePhy(0x10, 0x0100); // PHCON2.HDLDIS (errata #9)
    clock.advance(0.02);
  }
  spi.bfs('ECON1', 0x04);
  return { clock, lan, chip, spi, peer, received };
}

function queueFrame(spi: SpiProbe, frame: Uint8Array, control = 0x00) {
  spi.write16('EWRPTL', TX_START);
  spi.writeBuffer([control, ...frame]);
  spi.write16('ETXNDL', TX_START + frame.length);
}

/** TXRST pulse, clear the flags it may set (errata #12), TXRTS. */
function send(spi: SpiProbe, frame: Uint8Array, control = 0x00) {
  queueFrame(spi, frame, control);
  spi.bfs('ECON1', 0x80);
  spi.bfc('ECON1', 0x80);
  spi.bfc('EIR', 0x0a);
  spi.bfs('ECON1', 0x08);
}

function tsv(spi: SpiProbe, frameLength: number): number[] {
  spi.write16('ERDPTL', TX_START + frameLength + 1);
  return spi.readBuffer(7);
}

function readPacketAt(spi: SpiProbe, at: number) {
  spi.write16('ERDPTL', at);
  const header = spi.readBuffer(6);
  const count = header[2]! | (header[3]! << 8);
  return { next: header[0]! | (header[1]! << 8), count, status: header[4]! | (header[5]! << 8), data: spi.readBuffer(count) };
}

/** µs-resolution time until `done()` holds, stepping the virtual clock. */
function timeUntil(clock: VirtualClock, done: () => boolean, limitMs = 50): number {
  const start = clock.now();
  while (!done()) {
    if (clock.now() - start > limitMs) throw new Error('timed out');
    clock.advance(0.001);
  }
  return clock.now() - start;
}

/** 14 + payload bytes: (8 + max(len, 60) + 4) × 0.8 µs on the wire. */
const wireMs = (length: number) => (8 + Math.max(length, 60) + 4) * 0.0008;

describe('ENC28J60 emulator: the link partner and duplex (DS-ENC §9.0, §6.5)', () => {
  it('reports a chip set to full duplex on an auto-negotiating switch port (it falls back to half duplex)', () => {
    const { clock, chip, spi } = chipOnLan({ fullDuplex: true, linkPartner: 'auto-negotiating' });
    send(spi, makeFrame(PEER, OWN, 100));
    clock.advance(1);
    expect(chip.strictViolations.join()).toMatch(/duplex mismatch: the chip runs full duplex, the link partner half/);
  });

  it('full duplex against a half-duplex partner: transmitting over its frame garbles both (late collision at the partner)', () => {
    const { clock, chip, spi, peer, received } = chipOnLan({ fullDuplex: true, linkPartner: 'auto-negotiating', strict: false });
    peer.transmit(makeFrame(OWN, PEER, 1000, 1)); // 0.82 ms on the wire
    clock.advance(0.2); // well past the partner's slot time
    send(spi, makeFrame(PEER, OWN, 100));
    clock.advance(5);
    expect(chip.pendingPackets).toBe(0); // the partner's frame is lost
    expect(received.length).toBe(0); // and ours
    expect(chip.stats.collisions).toBe(1);
    expect(spi.read('EIR') & 0x08).toBe(0x08); // the chip itself thinks it sent it
  });

  it('matched half duplex: the chip defers to a frame coming in (TSV bit 26) and the partner to ours', () => {
    const { clock, spi, peer, received, chip } = chipOnLan();
    peer.transmit(makeFrame(OWN, PEER, 1000, 1));
    clock.advance(0.1);
    expect(spi.read('ESTAT') & 0x04).toBe(0x04); // RXBUSY while it comes in
    send(spi, makeFrame(PEER, OWN, 100));
    const elapsed = timeUntil(clock, () => (spi.read('EIR') & 0x08) !== 0);
    // The rest of the incoming frame, the gap, then ours.
    expect(elapsed).toBeGreaterThan(wireMs(1000) - 0.1 + wireMs(100));
    expect(tsv(spi, 100)[3]! & 0x04).toBe(0x04);
    expect(received.length).toBe(1);
    expect(chip.pendingPackets).toBe(1);
    expect(spi.read('ESTAT') & 0x04).toBe(0);
    expect(chip.strictViolations).toEqual([]);
  });

  it('half duplex against a full-duplex partner: its frame starting under ours is a collision — retried in the slot time, a late collision after it (errata #15: TSV bit 29, ESTAT.LATECOL not set)', () => {
    const { clock, spi, peer, received, chip } = chipOnLan({ linkPartner: 'full-duplex', strict: false });
    send(spi, makeFrame(PEER, OWN, 1000));
    clock.advance(0.02); // 25 bytes in: inside the slot time
    peer.transmit(makeFrame(OWN, PEER, 60, 1));
    clock.advance(10);
    expect(spi.read('EIR') & 0x0a).toBe(0x08); // sent after a backoff
    const first = tsv(spi, 1000);
    expect(first[2]! & 0x0f).toBe(1); // one collision
    expect(received.length).toBe(1);

    send(spi, makeFrame(PEER, OWN, 1000, 2));
    clock.advance(0.3); // 375 bytes in: past the slot time
    peer.transmit(makeFrame(OWN, PEER, 60, 3));
    clock.advance(5);
    expect(spi.read('EIR') & 0x0a).toBe(0x0a); // TXIF | TXERIF: aborted
    expect(tsv(spi, 1000)[3]! & 0x20).toBe(0x20); // TSV bit 29: late collision
    expect(spi.read('ESTAT') & 0x10).toBe(0); // LATECOL unreliable (errata #15)
    expect(received.length).toBe(1);
    expect(chip.stats.collisions).toBe(2);
  });

  it('half duplex without PHCON2.HDLDIS hears its own frames (errata #9); with it, not', () => {
    const without = chipOnLan({ hdldis: false });
    send(without.spi, makeFrame(BROADCAST, OWN, 80));
    without.clock.advance(1);
    expect(without.chip.pendingPackets).toBe(1);
    expect(without.chip.stats.rxLoopedBack).toBe(1);
    const withIt = chipOnLan();
    send(withIt.spi, makeFrame(BROADCAST, OWN, 80));
    withIt.clock.advance(1);
    expect(withIt.chip.pendingPackets).toBe(0);
  });

  it('keeps MABBIPG between back-to-back transmissions: (MABBIPG + 3) nibble times in full duplex (DS-ENC §6.5)', () => {
    const { clock, spi } = chipOnLan({ fullDuplex: true });
    spi.write('MABBIPG', 0x7d); // 128 nibbles: 51.2 µs
    send(spi, makeFrame(PEER, OWN, 60));
    clock.advance(wireMs(60) + 0.001);
    expect(spi.read('EIR') & 0x08).toBe(0x08);
    send(spi, makeFrame(PEER, OWN, 60, 1));
    const elapsed = timeUntil(clock, () => (spi.read('EIR') & 0x08) !== 0);
    expect(elapsed).toBeGreaterThan(0.0512 - 0.002 + wireMs(60) - 0.001);
  });

  it('a PAUSE frame holds the transmitter for its quanta with MACON1.RXPAUS, and is not stored without PASSALL', () => {
    const pause = new Uint8Array(60);
    pause.set([0x01, 0x80, 0xc2, 0x00, 0x00, 0x01], 0);
    pause.set(PEER, 6);
    pause.set([0x88, 0x08, 0x00, 0x01, 0x00, 100], 12); // opcode 1, 100 quanta = 5.12 ms
    const held = chipOnLan({ fullDuplex: true, macon1: 0x01 | 0x04 });
    held.chip.receiveFrame(pause);
    send(held.spi, makeFrame(PEER, OWN, 60));
    held.clock.advance(5);
    expect(held.spi.read('EIR') & 0x08).toBe(0);
    held.clock.advance(0.3);
    expect(held.spi.read('EIR') & 0x08).toBe(0x08);
    expect(held.chip.pendingPackets).toBe(0);
    const ignored = chipOnLan({ fullDuplex: true, macon1: 0x01 });
    ignored.chip.receiveFrame(pause);
    send(ignored.spi, makeFrame(PEER, OWN, 60));
    ignored.clock.advance(0.1);
    expect(ignored.spi.read('EIR') & 0x08).toBe(0x08);
  });
});

describe('ENC28J60 emulator: errata as behaviour (DS80349C)', () => {
  it('#6: PKTIF (and INT) can stay low for a packet EPKTCNT counts', () => {
    const { chip, spi } = chipOnLan({ pktifMissRate: 1, rxWireTime: false });
    spi.write('EIE', 0x80 | 0x40);
    chip.receiveFrame(makeFrame(OWN, PEER, 100));
    expect(spi.read('EPKTCNT')).toBe(1);
    expect(spi.read('EIR') & 0x40).toBe(0);
    expect(chip.interruptAsserted).toBe(false);
  });

  it('#12: clearing TXRST sets TXERIF', () => {
    const { spi } = chipOnLan({ rxWireTime: false });
    spi.bfs('ECON1', 0x80);
    expect(spi.read('EIR') & 0x02).toBe(0);
    spi.bfc('ECON1', 0x80);
    expect(spi.read('EIR') & 0x02).toBe(0x02);
  });

  it('#14: with an even ERXRDPT the chip writes over packets not yet read', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false, strict: false });
    spi.write16('ERXRDPTL', 0x0000); // even, at the start of the first packet
    chip.receiveFrame(makeFrame(OWN, PEER, 1500, 1));
    for (let i = 2; i < 10; i++) chip.receiveFrame(makeFrame(OWN, PEER, 1500, i));
    const first = readPacketAt(spi, 0);
    expect(first.data.slice(0, 16)).not.toEqual([...makeFrame(OWN, PEER, 1500, 1).subarray(0, 16)]);
  });

  it('#18: the pattern-match filter lets frames through that do not match', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false, patternMatchLeakRate: 1 });
    spi.bfc('ECON1', 0x04);
    spi.write('ERXFCON', 0x10); // PMEN alone
    spi.write('EPMM0', 0x01); // byte 0 of the frame …
    spi.write16('EPMCSL', 0x1234); // … checksum that no frame here matches
    spi.bfs('ECON1', 0x04);
    chip.receiveFrame(makeFrame(PEER, PEER, 100));
    expect(chip.pendingPackets).toBe(1);
  });
});

describe('ENC28J60 emulator: register and filter details (DS-ENC)', () => {
  it('MCEN alone accepts broadcast too: it is a group address (§8)', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false });
    spi.bfc('ECON1', 0x04);
    spi.write('ERXFCON', 0x02);
    spi.bfs('ECON1', 0x04);
    chip.receiveFrame(makeFrame(BROADCAST, PEER, 100));
    expect(chip.pendingPackets).toBe(1);
  });

  it('changing ERXFCON while RXEN is set is reported', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false });
    spi.write('ERXFCON', 0xa3);
    expect(chip.strictViolations.join()).toMatch(/ERXFCON changed while ECON1.RXEN is set/);
  });

  it('POVERRIDE with PPADEN but not PCRCEN pads and appends no CRC: the padded bytes are checked as the FCS (p.39)', () => {
    const { clock, spi, received } = chipOnLan({ rxWireTime: false });
    send(spi, makeFrame(PEER, OWN, 42), 0x01 | 0x04);
    clock.advance(1);
    expect(received.length).toBe(0);
  });

  it('TSV bit 22 (length out of range) is set for every Ethernet II frame, a type above 1500 (Table 7-1)', () => {
    const { clock, spi } = chipOnLan({ rxWireTime: false });
    send(spi, makeFrame(PEER, OWN, 100));
    clock.advance(1);
    expect(tsv(spi, 100)[2]! & 0x40).toBe(0x40);
    const lengthFrame = makeFrame(PEER, OWN, 100);
    lengthFrame[12] = 0x00;
    lengthFrame[13] = 86;
    send(spi, lengthFrame);
    clock.advance(1);
    expect(tsv(spi, 100)[2]! & 0x40).toBe(0);
  });

  it('RSV: control frames (27), PAUSE (28), unknown opcode (29) (Table 7-3)', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false, macon1: 0x01 | 0x02 });
    spi.bfc('ECON1', 0x04);
    spi.write('ERXFCON', 0x00);
    spi.bfs('ECON1', 0x04);
    const control = new Uint8Array(60);
    control.set([0x01, 0x80, 0xc2, 0x00, 0x00, 0x01], 0);
    control.set([0x88, 0x08, 0x00, 0x01], 12);
    chip.receiveFrame(control);
    const pause = readPacketAt(spi, 0);
    expect(pause.status & 0x1800).toBe(0x1800);
    control[15] = 0x02;
    chip.receiveFrame(control);
    const unknown = readPacketAt(spi, pause.next);
    expect(unknown.status & 0x2800).toBe(0x2800);
  });

  it('MIRD read with MICMD.MIIRD still set is reported (§3.3.1)', () => {
    const { clock, chip, spi } = chipOnLan({ rxWireTime: false });
    spi.startPhyRead(0x11);
    clock.advance(0.02);
    spi.read('MIRDL', true);
    expect(chip.strictViolations.join()).toMatch(/MIIRD still set/);
  });

  it('MIISCAN keeps MISTAT.SCAN and BUSY set, NVALID until the first read ends, and MIRD following the PHY (§3.3.3)', () => {
    const { clock, chip, spi } = chipOnLan({ rxWireTime: false });
    spi.write('MIREGADR', 0x11);
    spi.write('MICMD', 0x02);
    expect(spi.read('MISTAT', true) & 0x07).toBe(0x07);
    clock.advance(0.02);
    expect(spi.read('MISTAT', true) & 0x07).toBe(0x03);
    expect(spi.read('MIRDH', true) & 0x04).toBe(0x04); // LSTAT
    chip.setLinkUp(false);
    expect(spi.read('MIRDH', true) & 0x04).toBe(0);
    spi.write('MIREGADR', 0x01);
    expect(chip.strictViolations.join()).toMatch(/MIREGADR written while MICMD.MIISCAN is set/);
  });

  it('a command cut short by the board resetting (spiAbort) is not held against the driver; the same cut by the driver is', () => {
    const { chip } = chipOnLan({ rxWireTime: false });
    chip.spiSelect();
    chip.spiExchange(0xa0 | 0x1f); // BFC ECON1 BSEL
    chip.spiExchange(0x03);
    chip.spiDeselect();
    chip.spiSelect();
    chip.spiExchange(0x80 | 0x1f);
    chip.spiExchange(0x02); // bank 2
    chip.spiDeselect();
    chip.spiSelect();
    chip.spiExchange(0x00); // RCR MACON1: a dummy byte, then the value
    chip.spiAbort();
    expect(chip.strictViolations).toEqual([]);
    chip.spiSelect();
    chip.spiExchange(0x00);
    chip.spiDeselect();
    expect(chip.strictViolations.join()).toMatch(/without the MAC\/MII dummy byte/);
  });

  it('a read of an unimplemented PHY register is reported (Table 3-3)', () => {
    const { clock, chip, spi } = chipOnLan({ rxWireTime: false });
    spi.startPhyRead(0x05);
    clock.advance(0.02);
    spi.finishPhyRead();
    expect(chip.strictViolations.join()).toMatch(/unimplemented PHY register 0x5/);
  });

  it('the RESET pin held low: SO floats, nothing is received; released, the oscillator starts again (§2.2, §11.1)', () => {
    const { clock, chip, spi } = chipOnLan({ rxWireTime: false });
    chip.setResetPin(true);
    expect(spi.cycle([0x1d, 0])[1]).toBe(0xff);
    chip.receiveFrame(makeFrame(OWN, PEER, 100));
    expect(chip.pendingPackets).toBe(0);
    chip.setResetPin(false);
    expect(spi.cycle([0x1d, 0])[1]! & 0x01).toBe(0); // CLKRDY low for 300 µs
    clock.advance(0.31);
    expect(spi.cycle([0x1d, 0])[1]! & 0x01).toBe(1);
    expect(spi.read('ERXNDL')).toBe(0xff); // reset values
    expect(spi.read('ERXNDH')).toBe(0x1f);
  });

  it('power loss resets the PHY too and does not keep the buffer memory', () => {
    const { clock, chip, spi } = chipOnLan({ rxWireTime: false });
    spi.write16('EWRPTL', 0x100);
    spi.writeBuffer([1, 2, 3, 4, 5, 6, 7, 8]);
    chip.setPower(false);
    expect(spi.cycle([0x1d, 0])[1]).toBe(0xff);
    chip.setPower(true);
    clock.advance(0.31);
    expect(chip.peekPhy('PHCON2')).toBe(0);
    expect([...chip.memory.subarray(0x100, 0x108)]).not.toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('a receive ring across 0x1FFF → 0 is allowed: a packet wraps from ERXND to ERXST', () => {
    const clock = new VirtualClock();
    const chip = new Enc28j60Emulator({ clock, strict: true, linkPartner: 'full-duplex' });
    chip.plugInto(new VirtualLan(clock));
    const spi = new SpiProbe(chip);
    spi.write16('ERXSTL', 0x1f00);
    spi.write16('ERXNDL', 0x00ff);
    spi.write16('ERXRDPTL', 0x1fff); // just behind where errata #5 puts the write pointer: the whole ring free
    spi.write('MACON1', 0x01);
    spi.write('ERXFCON', 0);
    spi.bfs('ECON1', 0x04);
    // Errata #5 still applies (the write pointer goes to 0), but the ring itself is accepted.
    expect(chip.strictViolations.filter((v) => !/errata #5/.test(v))).toEqual([]);
    const frame = makeFrame(OWN, PEER, 400, 3);
    chip.receiveFrame(frame);
    expect(chip.pendingPackets).toBe(1);
    const packet = readPacketAt(spi, 0);
    expect(packet.count).toBe(404);
    expect(Uint8Array.from(packet.data.slice(0, 400))).toEqual(frame);
    expect(packet.next).toBe(0x1f00 + (6 + 404 - 0x100));
  });

  it('a frame over MAMXFL is cut at MAMXFL: without CRCEN kept with "received OK" clear; with CRCEN dropped, and the next packet shows the drop (RSV bit 16)', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false });
    spi.bfc('ECON1', 0x04);
    spi.write('ERXFCON', 0x00);
    spi.bfs('ECON1', 0x04);
    chip.receiveFrame(makeFrame(OWN, PEER, 1600));
    const cut = readPacketAt(spi, 0);
    expect(cut.count).toBe(1518);
    expect(cut.status & 0x80).toBe(0);
    // What is kept is the first MAMXFL bytes off the wire, with a CRC error (RSV bit 20, Table 7-3).
    expect(cut.next).toBe(6 + 1518);
    expect(cut.status & 0x10).toBe(0x10);
    expect(Uint8Array.from(cut.data)).toEqual(makeFrame(OWN, PEER, 1600).subarray(0, 1518));
    spi.bfc('ECON1', 0x04);
    spi.write('ERXFCON', 0xa1);
    spi.bfs('ECON1', 0x04);
    chip.receiveFrame(makeFrame(OWN, PEER, 1600));
    expect(chip.pendingPackets).toBe(1);
    chip.receiveFrame(makeFrame(OWN, PEER, 100));
    const after = readPacketAt(spi, cut.next);
    expect(after.status & 0x01).toBe(0x01);
    expect(after.status & 0x80).toBe(0x80);
    expect(crc32(Uint8Array.from(after.data.slice(0, 100)))).toBe(crc32(makeFrame(OWN, PEER, 100)));
  });

  it('with MACON3.HFRMEN a frame over MAMXFL is stored whole, its full count and next packet pointer in the header; one over 50,000 bit times sets RSV bit 16 (DS-ENC Register 6-2, Table 7-3, p.43)', () => {
    const { chip, spi } = chipOnLan({ rxWireTime: false });
    spi.write('MACON3', 0x20 | 0x10 | 0x04 | 0x02);
    const giant = makeFrame(OWN, PEER, 1600);
    chip.receiveFrame(giant);
    const whole = readPacketAt(spi, 0);
    expect(whole.count).toBe(1604);
    expect(whole.next).toBe(6 + 1604);
    expect(whole.status & 0x80).toBe(0x80);
    expect(whole.status & 0x01).toBe(0);
    expect(crc32(Uint8Array.from(whole.data.slice(0, 1600)))).toBe(crc32(giant));
    expect(chip.stats.rxDroppedTooLong).toBe(0);
    // 6500 bytes: 52,000 bit times, and it fits the 6.5 KB ring once the first packet is freed.
    spi.write16('ERXRDPTL', whole.next - 1);
    spi.bfs('ECON2', 0x40);
    chip.receiveFrame(makeFrame(OWN, PEER, 6500));
    const long = readPacketAt(spi, whole.next);
    expect(long.count).toBe(6504);
    expect(long.status & 0x01).toBe(0x01);
    expect(long.status & 0x80).toBe(0x80);
    // 9000 bytes cannot fit the ring: an overflow (RXERIF, §7.2.4), not stored.
    const overflows = chip.stats.rxDroppedOverflow;
    chip.receiveFrame(makeFrame(OWN, PEER, 9000));
    expect(chip.stats.rxDroppedOverflow).toBe(overflows + 1);
    expect(chip.pendingPackets).toBe(1);
  });
});
