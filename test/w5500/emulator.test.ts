import { describe, expect, it } from 'vitest';
import { W5500Emulator } from '../../hal/w5500/emulator.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { makeFrame } from '../enc28j60/spi-helpers.js';
import { BROADCAST, COMMON, OWN, PEER, W5500Probe, sameBytes, socketRegisters, socketRx, socketTx, w5500Lab } from './spi-probe.js';

const S0 = socketRegisters(0);
const S0_TX = socketTx(0);
const S0_RX = socketRx(0);

/** A bare strict chip, no cable. */
function bareChip(options: { spiClockHz?: number } = {}) {
  const clock = new VirtualClock();
  const chip = new W5500Emulator({ clock, strict: true, ...options });
  return { clock, chip, spi: new W5500Probe(chip, clock) };
}

/** Read socket 0's next MACRAW record at `at`: the 2-byte length header and the frame after it. */
function readRecord(spi: W5500Probe, at: number) {
  const header = spi.read16(S0_RX, at);
  return { header, frame: Uint8Array.from(spi.read(S0_RX, (at + 2) & 0xffff, header - 2)) };
}

/** Consume `bytes` of socket 0's RX buffer: RX_RD += bytes, RECV (DS-W p.55). */
function consume(spi: W5500Probe, bytes: number) {
  const rd = spi.read16(S0, 0x0028);
  spi.write16(S0, 0x0028, (rd + bytes) & 0xffff);
  spi.write(S0, 0x0001, [0x40]);
  spi.settle();
}

/** Write `frame` at TX_WR, advance TX_WR, SEND (DS-W p.54–55). */
function send(spi: W5500Probe, frame: Uint8Array) {
  const wr = spi.read16(S0, 0x0024);
  spi.write(S0_TX, wr, [...frame]);
  spi.write16(S0, 0x0024, (wr + frame.length) & 0xffff);
  spi.write(S0, 0x0001, [0x20]);
}

describe('W5500 emulator: the SPI frame (DS-W §2.2–2.4)', () => {
  it('returns 0x01 0x02 0x03 on MISO while the offset and control byte are clocked, then the data: VERSIONR is 0x04', () => {
    const { chip, spi } = bareChip();
    expect(spi.frame(COMMON, 0x0039, false, [0])).toEqual([0x01, 0x02, 0x03, 0x04]);
    expect(chip.strictViolations).toEqual([]);
  });

  it('auto-increments the offset through a variable-length frame, writing and reading several registers at once', () => {
    const { chip, spi } = bareChip();
    const gateway = [192, 0, 2, 1], subnet = [255, 255, 255, 0], ip = [192, 0, 2, 10];
    spi.write(COMMON, 0x0001, [...gateway, ...subnet, ...OWN, ...ip]); // GAR, SUBR, SHAR, SIPR
    expect(spi.read(COMMON, 0x0001, 18)).toEqual([...gateway, ...subnet, ...OWN, ...ip]);
    expect(chip.macAddress).toEqual(OWN);
    expect(chip.strictViolations).toEqual([]);
  });

  it('in the fixed-length modes (OM 01, 10, 11) a frame carries 1, 2 or 4 data bytes, and the next header follows with SCSn still low', () => {
    const { chip, spi } = bareChip();
    chip.spiSelect();
    const x = (bytes: number[]) => bytes.map((b) => chip.spiExchange(b));
    x([0x00, 0x01, 0x04 | 0x03, 10, 20, 30, 40]); // GAR, 4 bytes
    x([0x00, 0x05, 0x04 | 0x02, 255, 254]); // SUBR[0..1], 2 bytes
    const version = x([0x00, 0x39, 0x01, 0]); // VERSIONR, 1 byte
    chip.spiDeselect();
    expect(version).toEqual([0x01, 0x02, 0x03, 0x04]);
    expect(spi.read(COMMON, 0x0001, 6)).toEqual([10, 20, 30, 40, 255, 254]);
    expect(chip.strictViolations).toEqual([]);
  });

  it('reports a fixed-length frame cut short, a frame cut in its header and a reserved block select', () => {
    const { chip } = bareChip();
    chip.spiSelect();
    [0x00, 0x01, 0x04 | 0x03, 1, 2].forEach((b) => chip.spiExchange(b));
    chip.spiDeselect();
    chip.spiSelect();
    chip.spiExchange(0x00);
    chip.spiDeselect();
    const probe = new W5500Probe(chip);
    expect(probe.frame(4, 0x0000, false, [0])[3]).toBe(0); // BSB 00100 is reserved
    expect(chip.strictViolations).toHaveLength(3);
    expect(chip.strictViolations[0]).toMatch(/fixed-length SPI frame ended 2 data byte/);
    expect(chip.strictViolations[1]).toMatch(/after 1 of its 3 header bytes/);
    expect(chip.strictViolations[2]).toMatch(/reserved block select 4/);
  });

  it('MISO floats high (0xFF) while SCSn is high', () => {
    const { chip } = bareChip();
    expect(chip.spiExchange(0x00)).toBe(0xff);
  });

  it('ignores and reports writes to read-only registers (VERSIONR, Sn_SR, Sn_RX_RSR) and reserved ones', () => {
    const { chip, spi } = bareChip();
    spi.write(COMMON, 0x0039, [0x99]);
    spi.write(S0, 0x0003, [0x42]);
    spi.write(S0, 0x0026, [0x12, 0x34]);
    spi.write(COMMON, 0x0030, [1]);
    expect(spi.read8(COMMON, 0x0039)).toBe(0x04);
    expect(spi.read8(S0, 0x0003)).toBe(0x00);
    expect(spi.read16(S0, 0x0026)).toBe(0);
    expect(chip.strictViolations.map((v) => /(read-only|reserved) \S+/.exec(v)?.[0])).toEqual([
      'read-only VERSIONR', 'read-only S0_SR', 'read-only S0_RX_RSR[0]', 'read-only S0_RX_RSR[1]', 'reserved common',
    ]);
  });
});

describe('W5500 emulator: common registers (DS-W §4.1)', () => {
  it('IMR and SIMR hold what is written; IR is write-1-to-clear (writing 1s to a clear IR leaves it clear)', () => {
    const { chip, spi } = bareChip();
    spi.write(COMMON, 0x0016, [0xf0]);
    spi.write(COMMON, 0x0018, [0x81]);
    spi.write(COMMON, 0x0015, [0xff]);
    expect(spi.read(COMMON, 0x0015, 4)).toEqual([0x00, 0xf0, 0x00, 0x81]);
    expect(chip.interruptAsserted).toBe(false);
    expect(chip.strictViolations).toEqual([]);
  });

  it('comes out of reset with the datasheet values: RTR 0x07D0, RCR 8, PTIMER 0x28, PMRU 0xFFFF, PHYCFGR 1011 1xxx, VERSIONR 4', () => {
    const { chip, spi } = bareChip();
    expect(spi.read8(COMMON, 0x0000)).toBe(0x00);
    expect(spi.read16(COMMON, 0x0019)).toBe(0x07d0);
    expect(spi.read8(COMMON, 0x001b)).toBe(0x08);
    expect(spi.read8(COMMON, 0x001c)).toBe(0x28);
    expect(spi.read16(COMMON, 0x0026)).toBe(0xffff);
    expect(spi.read8(COMMON, 0x002e)).toBe(0xb8); // no cable: no link
    expect(spi.read(COMMON, 0x0015, 4)).toEqual([0, 0, 0, 0]); // IR, IMR, SIR, SIMR
    expect(chip.strictViolations).toEqual([]);
  });

  it('comes out of reset with the addresses and the rest of the common block at 0x00 (DS-W §4.1): GAR, SUBR, SHAR, SIPR, INTLEVEL, PMAGIC, PHAR, PSID, UIPR, UPORTR', () => {
    const { chip, spi } = bareChip();
    expect(spi.read(COMMON, 0x0001, 18)).toEqual(new Array(18).fill(0)); // GAR, SUBR, SHAR, SIPR
    expect(spi.read16(COMMON, 0x0013)).toBe(0); // INTLEVEL
    expect(spi.read(COMMON, 0x001d, 9)).toEqual(new Array(9).fill(0)); // PMAGIC, PHAR, PSID
    expect(spi.read(COMMON, 0x0028, 6)).toEqual(new Array(6).fill(0)); // UIPR, UPORTR
    expect(chip.strictViolations).toEqual([]);
  });

  it('gives every socket its reset values: 2 KB buffers each, Sn_TX_FSR 0x0800, Sn_IMR 0xFF, Sn_TTL 0x80, Sn_DHAR all ones, Sn_FRAG 0x4000', () => {
    const { spi } = bareChip();
    for (let n = 0; n < 8; n++) {
      const s = socketRegisters(n);
      expect(spi.read(s, 0x001e, 2)).toEqual([2, 2]);
      expect(spi.read16(s, 0x0020)).toBe(0x0800);
      expect(spi.read8(s, 0x002c)).toBe(0xff);
      expect(spi.read8(s, 0x0016)).toBe(0x80);
      expect(spi.read(s, 0x0006, 6)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      expect(spi.read16(s, 0x002d)).toBe(0x4000);
      expect(spi.read8(s, 0x0003)).toBe(0x00);
    }
  });

  it('MR.RST resets every register and reads 1 until the reset is done; writes meanwhile are ignored and reported', () => {
    const { chip, spi } = w5500Lab();
    spi.write(COMMON, 0x0009, [...OWN]);
    spi.write(S0, 0x001e, [16]);
    spi.write(COMMON, 0x0000, [0x80]);
    expect(spi.read8(COMMON, 0x0000)).toBe(0x80);
    spi.write(COMMON, 0x0009, [0xaa]);
    spi.settle(1);
    expect(spi.read8(COMMON, 0x0000)).toBe(0x00);
    expect(spi.read(COMMON, 0x0009, 6)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(spi.read8(S0, 0x001e)).toBe(2);
    expect(spi.read8(COMMON, 0x002e) & 0x01).toBe(1); // the PHY keeps its link through a soft reset
    expect(chip.strictViolations).toEqual([expect.stringMatching(/SHAR\[0\] while MR.RST is still 1/)]);
  });

  it('PHYCFGR shows link, 100 Mbit/s and full duplex from the cable; RST = 0 resets the PHY until RST = 1, then it negotiates again', () => {
    const { chip, spi } = w5500Lab({ autonegotiationMs: 20 });
    spi.settle(20);
    expect(spi.read8(COMMON, 0x002e)).toBe(0xbf);
    chip.setLinkUp(false);
    expect(spi.read8(COMMON, 0x002e)).toBe(0xb8);
    chip.setLinkUp(true);
    expect(spi.read8(COMMON, 0x002e) & 0x01).toBe(0); // still negotiating
    spi.settle(20);
    expect(spi.read8(COMMON, 0x002e)).toBe(0xbf);
    spi.write(COMMON, 0x002e, [0x40 | 0x08]); // RST = 0, OPMD: 10BASE-T full duplex
    expect(spi.read8(COMMON, 0x002e)).toBe(0x48);
    spi.settle(50);
    expect(spi.read8(COMMON, 0x002e) & 0x01).toBe(0);
    spi.write(COMMON, 0x002e, [0x80 | 0x40 | 0x08]);
    spi.settle(20);
    expect(spi.read8(COMMON, 0x002e)).toBe(0xc8 | 0x04 | 0x01); // 10 Mbit/s (SPD 0), full duplex, link
    expect(chip.strictViolations).toEqual([]);
  });

  it('after a reset the host did not cause, what it does from the old state is not misuse until it has looked at Sn_SR', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    chip.powerCycle();
    spi.settle(1.1);
    spi.write(S0_TX, 0, [1, 2, 3]); // the host still thinks socket 0 is open
    expect(chip.strictViolations).toEqual([]);
    expect(spi.read8(S0, 0x0003)).toBe(0x00);
    spi.write(S0_TX, 0, [1, 2, 3]);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/S0 TX buffer accessed while the socket is closed/)]);
  });

  it('RSTn: the chip does not answer until its PLL has locked (1 ms); the host touching it earlier is reported, a power glitch is not the host\'s doing', () => {
    const { chip, spi } = bareChip();
    spi.write(COMMON, 0x0009, [...OWN]);
    chip.powerCycle();
    expect(spi.read8(COMMON, 0x0039)).toBe(0x00);
    expect(chip.strictViolations).toEqual([]);
    chip.hardReset();
    expect(spi.read8(COMMON, 0x0039)).toBe(0x00);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/before the PLL has locked/)]);
    spi.settle(1);
    expect(spi.read8(COMMON, 0x0039)).toBe(0x04);
    expect(spi.read(COMMON, 0x0009, 6)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('W5500 emulator: interrupts (DS-W §4.1 IR/IMR/SIR/SIMR, §4.2 Sn_IR/Sn_IMR)', () => {
  it('SIR bit 0 follows S0_IR whatever SIMR says; INTn is low only while SIMR enables it; writing 1 clears Sn_IR and releases INTn', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    peer.transmit(makeFrame(OWN, PEER, 60));
    expect(spi.read8(S0, 0x0002)).toBe(0x04); // RECV
    expect(spi.read8(COMMON, 0x0017)).toBe(0x01);
    expect(chip.interruptAsserted).toBe(false);
    spi.write(COMMON, 0x0018, [0x01]); // SIMR
    expect(chip.interruptAsserted).toBe(true);
    spi.write(S0, 0x0002, [0x10]); // clearing another bit changes nothing
    expect(chip.interruptAsserted).toBe(true);
    spi.write(S0, 0x0002, [0x04]);
    expect(spi.read8(COMMON, 0x0017)).toBe(0x00);
    expect(chip.interruptAsserted).toBe(false);
    expect(chip.strictViolations).toEqual([]);
  });

  it('SIR only follows Sn_IR (DS-W §4.1 SIR): writing it changes nothing, INTn stays low until Sn_IR is cleared', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    spi.write(COMMON, 0x0018, [0x01]);
    peer.transmit(makeFrame(OWN, PEER, 60));
    spi.write(COMMON, 0x0017, [0x01]);
    spi.write(COMMON, 0x0017, [0x00]);
    expect(spi.read8(COMMON, 0x0017)).toBe(0x01);
    expect(chip.interruptAsserted).toBe(true);
    spi.write(S0, 0x0002, [0x04]);
    expect(spi.read8(COMMON, 0x0017)).toBe(0x00);
    expect(chip.interruptAsserted).toBe(false);
  });

  it('a Sn_IR bit whose Sn_IMR bit is clear is never set at all: SEND_OK masked means no SEND_OK to poll for (forum topic 1255)', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    spi.write(S0, 0x002c, [0x04]); // Sn_IMR: RECV only
    send(spi, makeFrame(PEER, OWN, 60));
    spi.settle(1);
    expect(chip.stats.txFramesSent).toBe(1);
    expect(spi.read8(S0, 0x0002)).toBe(0x00);
    expect(chip.strictViolations).toEqual([]);
  });

  it('INTLEVEL delays the fall of INTn by (INTLEVEL + 1) × 4 PLL clocks', () => {
    const { clock, chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    spi.write(COMMON, 0x0013, [0x03, 0xa9]); // 937: (937 + 1) × 4 / 150 MHz = 25 µs
    spi.write(COMMON, 0x0018, [0x01]);
    spi.settle();
    peer.transmit(makeFrame(OWN, PEER, 60));
    expect(chip.interruptAsserted).toBe(false);
    clock.advance(0.024);
    expect(chip.interruptAsserted).toBe(false);
    clock.advance(0.002);
    expect(chip.interruptAsserted).toBe(true);
  });
});

describe('W5500 emulator: sockets, buffers and pointers (DS-W §3.3, §4.2)', () => {
  it('a command reads back in Sn_CR until accepted, then 0, while its effect lands a little later (Sn_SR after OPEN)', () => {
    const { clock, chip, spi } = w5500Lab({ spiClockHz: 80e6 });
    spi.write(S0, 0x0000, [0x04]);
    spi.write(S0, 0x0001, [0x01]);
    expect(spi.read8(S0, 0x0001)).toBe(0x01); // 0.4 µs later: not yet accepted
    clock.advance(0.002);
    expect(spi.read8(S0, 0x0001)).toBe(0x00);
    expect(spi.read8(S0, 0x0003)).toBe(0x00); // accepted, still being processed
    clock.advance(0.01);
    expect(spi.read8(S0, 0x0003)).toBe(0x42);
    expect(chip.strictViolations).toEqual([]);
  });

  it('Sn_SR follows the commands (DS-W §4.2 Sn_SR, Sn_CR): OPEN gives the state of Sn_MR\'s protocol (MACRAW 0x42, UDP 0x22, TCP 0x13), CLOSE gives SOCK_CLOSED; OPEN starts the buffers empty', () => {
    const { chip, spi, peer } = w5500Lab();
    const openAs = (socket: number, mode: number) => {
      const s = socketRegisters(socket);
      spi.write(s, 0x0000, [mode]);
      spi.write(s, 0x0001, [0x01]);
      spi.settle();
      return spi.read8(s, 0x0003);
    };
    const close = (socket: number) => {
      spi.write(socketRegisters(socket), 0x0001, [0x10]);
      spi.settle();
      return spi.read8(socketRegisters(socket), 0x0003);
    };
    expect(openAs(1, 0x02)).toBe(0x22);
    expect(close(1)).toBe(0x00);
    expect(openAs(2, 0x01)).toBe(0x13);
    expect(close(2)).toBe(0x00);
    expect(openAs(0, 0x04)).toBe(0x42);
    peer.transmit(makeFrame(OWN, PEER, 100));
    expect(spi.read16(S0, 0x002a)).toBe(102);
    expect(close(0)).toBe(0x00);
    expect(openAs(0, 0x04)).toBe(0x42);
    // "Initialized by OPEN": nothing received or waiting to be sent (the datasheet gives no value; 0 here).
    expect(spi.read16(S0, 0x0026)).toBe(0);
    expect(spi.read16(S0, 0x0028)).toBe(spi.read16(S0, 0x002a));
    expect(spi.read16(S0, 0x0022)).toBe(spi.read16(S0, 0x0024));
    expect(spi.read16(S0, 0x0020)).toBe(0x0800);
    expect(chip.strictViolations).toEqual([]);
  });

  it('reports a command written while Sn_CR still holds the previous one', () => {
    const { chip, spi } = w5500Lab({ spiClockHz: 80e6 });
    spi.write(S0, 0x0000, [0x04]);
    spi.write(S0, 0x0001, [0x01]);
    spi.write(S0, 0x0001, [0x10]);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/S0_CR = 0x10 while Sn_CR still reads 0x1/)]);
  });

  it('gives socket 0 all 16 KB when the others have none; more than 16 KB in total at OPEN is reported; sizes are 0/1/2/4/8/16', () => {
    const { chip, spi } = w5500Lab();
    spi.write(S0, 0x001e, [16, 16]);
    spi.write(S0, 0x0000, [0x04]);
    spi.write(S0, 0x0001, [0x01]);
    spi.settle();
    expect(chip.strictViolations).toEqual([expect.stringMatching(/30 KB of RX and 30 KB of TX/)]);
    spi.write(socketRegisters(3), 0x001e, [3]);
    expect(chip.strictViolations[1]).toMatch(/S3_RXBUF_SIZE = 3: only 0, 1, 2, 4, 8 or 16 KB/);
    spi.write(S0, 0x001e, [8]);
    expect(chip.strictViolations[2]).toMatch(/S0_RXBUF_SIZE changed while the socket is open/);
  });

  it('MACRAW runs on socket 0 only: OPEN of MACRAW on socket 1 is reported and leaves it closed', () => {
    const { chip, spi } = w5500Lab();
    const s1 = socketRegisters(1);
    spi.write(s1, 0x0000, [0x04]);
    spi.write(s1, 0x0001, [0x01]);
    spi.settle();
    expect(spi.read8(s1, 0x0003)).toBe(0x00);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/MACRAW on S1/)]);
  });

  it('reports touching the buffers of a closed socket', () => {
    const { chip, spi } = w5500Lab();
    spi.read(S0_RX, 0, 4);
    spi.write(S0_TX, 0, [1, 2]);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/S0 RX buffer accessed while the socket is closed/), expect.stringMatching(/S0 TX buffer accessed while the socket is closed/)]);
  });

  it('Sn_MR is taken at OPEN: writing it while the socket is open is reported', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    spi.write(S0, 0x0000, [0x84]);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/S0_MR written while the socket is open/)]);
  });

  it('addresses a buffer with the 16-bit pointer modulo the socket\'s size: with 2 KB, offsets 0x0800 and 0xF800 are offset 0', () => {
    const { chip, spi } = w5500Lab();
    spi.write(S0, 0x0000, [0x04]);
    spi.write(S0, 0x0001, [0x01]);
    spi.settle();
    spi.write(S0_TX, 0x0000, [0xab]);
    spi.write(S0_TX, 0x07fe, [1, 2]);
    expect(spi.read(S0_TX, 0x0800, 1)).toEqual([0xab]);
    expect(spi.read(S0_TX, 0xf800, 1)).toEqual([0xab]);
    // A frame running past 0xFFFF goes on at 0x0000 (the carry is ignored, DS-W p.54–56).
    expect(spi.read(S0_TX, 0xfffe, 3)).toEqual([1, 2, 0xab]);
    expect(chip.strictViolations).toEqual([]);
  });
});

describe('W5500 emulator: MACRAW receive (DS-W §4.2; docs/w5500.md, MACRAW)', () => {
  it('stores each frame as a 2-byte big-endian length counting itself, then the frame without FCS, padded to 60; RSR and RX_WR grow by it', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    peer.transmit(makeFrame(OWN, PEER, 42, 1));
    peer.transmit(makeFrame(OWN, PEER, 1514, 2));
    expect(spi.read16(S0, 0x0026)).toBe(62 + 1516);
    expect(spi.read16(S0, 0x002a)).toBe(62 + 1516);
    const first = readRecord(spi, 0);
    expect(first.header).toBe(62);
    expect(first.frame.subarray(0, 42)).toEqual(makeFrame(OWN, PEER, 42, 1));
    expect(first.frame.subarray(42).every((b) => b === 0)).toBe(true);
    const second = readRecord(spi, 62);
    expect(second.header).toBe(1516);
    expect(sameBytes(second.frame, makeFrame(OWN, PEER, 1514, 2))).toBe(true);
    consume(spi, 62);
    expect(spi.read16(S0, 0x0026)).toBe(1516);
    expect(chip.strictViolations).toEqual([]);
  });

  it('RECV frees space only a little after it is accepted: RSR is unchanged in the same instant', () => {
    const { spi, peer } = w5500Lab();
    spi.openMacraw();
    peer.transmit(makeFrame(OWN, PEER, 100));
    spi.write16(S0, 0x0028, 102);
    spi.write(S0, 0x0001, [0x40]);
    expect(spi.read16(S0, 0x0026)).toBe(102);
    spi.settle();
    expect(spi.read16(S0, 0x0026)).toBe(0);
  });

  it('with MFEN, receives frames to SHAR and broadcasts only; without it, everything; BCASTB, MMB and MIP6B block their kind', () => {
    const frames = {
      own: makeFrame(OWN, PEER, 60),
      other: makeFrame(Uint8Array.of(2, 0, 0, 0, 0, 9), PEER, 60),
      broadcast: makeFrame(BROADCAST, PEER, 60),
      multicast: makeFrame(Uint8Array.of(0x01, 0x00, 0x5e, 0, 0, 1), PEER, 60),
      ipv6: (() => {
        const f = makeFrame(OWN, PEER, 60);
        f[12] = 0x86;
        f[13] = 0xdd;
        return f;
      })(),
    };
    const accepted = (mode: number) => {
      const { chip, spi } = w5500Lab();
      spi.openMacraw(mode, OWN);
      const names: string[] = [];
      for (const [name, frame] of Object.entries(frames)) {
        const before = chip.stats.rxFramesStored;
        chip.receiveFrame(frame);
        if (chip.stats.rxFramesStored > before) names.push(name);
      }
      return names;
    };
    expect(accepted(0x04 | 0x80)).toEqual(['own', 'broadcast', 'ipv6']);
    expect(accepted(0x04)).toEqual(['own', 'other', 'broadcast', 'multicast', 'ipv6']);
    expect(accepted(0x04 | 0x40)).toEqual(['own', 'other', 'multicast', 'ipv6']);
    expect(accepted(0x04 | 0x20)).toEqual(['own', 'other', 'broadcast', 'ipv6']);
    expect(accepted(0x04 | 0x10)).toEqual(['own', 'other', 'broadcast', 'multicast']);
  });

  it('drops a frame longer than 1514 bytes at the MAC (MACRAW MTU 1514, DS-W §4.2 Sn_MSSR): nothing of it in the buffer, the frames around it stored back to back', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    for (const length of [100, 1600, 9000, 1514, 1515]) chip.receiveFrame(makeFrame(OWN, PEER, length, length));
    expect(chip.stats.rxDroppedTooLong).toBe(3);
    expect(spi.read16(S0, 0x0026)).toBe(102 + 1516);
    const first = readRecord(spi, 0);
    expect(sameBytes(first.frame, makeFrame(OWN, PEER, 100, 100))).toBe(true);
    const second = readRecord(spi, 102);
    expect(second.header).toBe(1516);
    expect(sameBytes(second.frame, makeFrame(OWN, PEER, 1514, 1514))).toBe(true);
    expect(chip.strictViolations).toEqual([]);
  });

  it('drops a frame that does not fit in what is free of the RX buffer, and stores the next once RECV has freed room', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    for (let i = 0; i < 11; i++) peer.transmit(makeFrame(OWN, PEER, 1514, i)); // 10 × 1516 = 15160 of 16384
    expect(chip.stats.rxFramesStored).toBe(10);
    expect(chip.stats.rxDroppedFull).toBe(1);
    expect(spi.read16(S0, 0x0026)).toBe(15160);
    consume(spi, 1516);
    peer.transmit(makeFrame(OWN, PEER, 1514, 99));
    expect(sameBytes(readRecord(spi, 15160).frame, makeFrame(OWN, PEER, 1514, 99))).toBe(true);
    expect(chip.strictViolations).toEqual([]);
  });

  it('wraps the 16-bit pointers past 0xFFFF with the carry ignored, the buffer modulo 16 KB', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    let rd = 0;
    for (let i = 0; i < 50; i++) {
      peer.transmit(makeFrame(OWN, PEER, 1514, i));
      const record = readRecord(spi, rd);
      expect(sameBytes(record.frame, makeFrame(OWN, PEER, 1514, i))).toBe(true);
      consume(spi, 1516);
      rd = (rd + 1516) & 0xffff;
    }
    expect(spi.read16(S0, 0x002a)).toBe((50 * 1516) & 0xffff); // 75800 − 65536
    expect(spi.read16(S0, 0x0028)).toBe(rd);
    expect(chip.strictViolations).toEqual([]);
  });

  it('reports reading past what was received (RSR), RECV that does not move RX_RD, and RECV past RSR', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    peer.transmit(makeFrame(OWN, PEER, 60));
    spi.read(S0_RX, 0, 63);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/read of S0 RX buffer at 0x3e, past what was received/)]);
    spi.write(S0, 0x0001, [0x40]);
    spi.settle();
    expect(chip.strictViolations[1]).toMatch(/RECV on S0 without moving Sn_RX_RD/);
    spi.write16(S0, 0x0028, 100);
    spi.write(S0, 0x0001, [0x40]);
    spi.settle();
    expect(chip.strictViolations[2]).toMatch(/past what was received \(RSR 62/);
    expect(spi.read16(S0, 0x0026)).toBe(62);
  });

  it('Sn_RX_RSR can tear: a frame stored between the two byte reads gives a value that is neither, and two reads that agree are the truth', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    for (let i = 0; i < 4; i++) peer.transmit(makeFrame(OWN, PEER, 60, i)); // RSR 248 = 0x00F8
    chip.injectFault({ kind: 'tear', register: 'Sn_RX_RSR' });
    peer.transmit(makeFrame(OWN, PEER, 60, 4)); // held until the read: RSR becomes 310 = 0x0136
    expect(chip.heldFrameCount).toBe(1);
    const torn = spi.read16(S0, 0x0026);
    expect(torn).toBe(0x0036); // high byte before, low byte after
    const reads = [spi.read16(S0, 0x0026), spi.read16(S0, 0x0026)];
    expect(reads).toEqual([310, 310]);
    expect(chip.strictViolations).toEqual([]);
  });

  it('tears by itself when a frame finishes arriving (100 Mbit/s) between the two bytes of the read', () => {
    const { clock, chip, spi, peer } = w5500Lab({ rxWireTime: true });
    spi.openMacraw();
    for (let i = 0; i < 4; i++) peer.transmit(makeFrame(OWN, PEER, 60, i));
    clock.advance(1);
    expect(spi.read16(S0, 0x0026)).toBe(248);
    // A 200-byte frame is on the wire for (8 + 200 + 4) × 0.08 µs = 16.96 µs. A read from 0x001A
    // clocks RSR's high byte 16 µs after the frame started, its low byte 17 µs after (8 MHz SPI).
    peer.transmit(makeFrame(OWN, PEER, 200, 9));
    const bytes = spi.read(S0, 0x001a, 14);
    const torn = (bytes[12]! << 8) | bytes[13]!;
    expect(torn).toBe(((248 >> 8) << 8) | ((248 + 202) & 0xff)); // 0x00C2 rather than 0x01C2
    expect(spi.read16(S0, 0x0026)).toBe(450);
    expect(chip.strictViolations).toEqual([]);
  });
});

describe('W5500 emulator: MACRAW transmit (DS-W §4.2 Sn_TX_*, SEND, SEND_OK)', () => {
  it('sends the bytes from TX_RD to TX_WR as one frame, padded to 60 on the wire; SEND_OK and TX_RD after its wire time; FSR back to the size', () => {
    const { chip, spi, received } = w5500Lab();
    spi.openMacraw();
    const arp = makeFrame(PEER, OWN, 42, 7);
    send(spi, arp);
    spi.settle(0.005);
    expect(spi.read16(S0, 0x0020)).toBe(16384 - 42); // handed over, not sent yet
    expect(spi.read8(S0, 0x0002) & 0x10).toBe(0);
    spi.settle(); // (8 + 60 + 4 + 12) × 0.08 µs
    expect(received).toHaveLength(1);
    expect(received[0]!.subarray(0, 42)).toEqual(arp);
    expect(received[0]!.length).toBe(60);
    expect(received[0]!.subarray(42).every((b) => b === 0)).toBe(true);
    expect(spi.read8(S0, 0x0002) & 0x10).toBe(0x10);
    expect(spi.read16(S0, 0x0022)).toBe(42);
    expect(spi.read16(S0, 0x0020)).toBe(16384);
    expect(chip.strictViolations).toEqual([]);
  });

  it('Sn_TX_FSR can tear too: a frame finishing between its two byte reads', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    for (let i = 0; i < 3; i++) {
      send(spi, makeFrame(PEER, OWN, 1000, i));
      spi.settle(1);
    }
    chip.injectFault({ kind: 'tear', register: 'Sn_TX_FSR' });
    send(spi, makeFrame(PEER, OWN, 1000, 3)); // TX_RD 3000 → 4000; FSR 16384 − 1000 = 0x3C18 → 0x4000
    spi.settle(1); // the frame is off the wire, its completion held until the read
    expect(spi.read16(S0, 0x0020)).toBe(0x3c00); // high byte before (0x3C), low byte after (0x00)
    expect([spi.read16(S0, 0x0020), spi.read16(S0, 0x0020)]).toEqual([0x4000, 0x4000]);
    expect(chip.strictViolations).toEqual([]);
  });

  it('reports a write past the free space (overwriting data not yet sent) and a SEND while the previous frame is on the wire', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    send(spi, makeFrame(PEER, OWN, 1514));
    spi.settle(0.02);
    spi.write(S0_TX, 100, [1]);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/write into S0 TX buffer at 0x64, past its free space/)]);
    send(spi, makeFrame(PEER, OWN, 14)); // ≈ 30 µs of SPI: the 1514-byte frame takes 124 µs on the wire
    spi.settle(0.02);
    expect(chip.strictViolations[1]).toMatch(/SEND on S0 while the previous frame is still on the wire/);
  });

  it('reports a SEND of more than 1514 bytes (MACRAW does not segment) and one with nothing written', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    spi.write(S0, 0x0001, [0x20]);
    spi.settle();
    send(spi, new Uint8Array(1600));
    spi.settle(1);
    expect(chip.strictViolations).toEqual([expect.stringMatching(/SEND on S0 with nothing written/), expect.stringMatching(/SEND of 1600 bytes/)]);
    expect(chip.stats.txFramesSent).toBe(0);
  });
});

describe('W5500 emulator: injected faults (docs/w5500.md, field failures)', () => {
  it('corrupt length header: the next record says 65534 (or 0, 1, more than RSR) while RX_WR still moves by the real length', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    chip.injectFault({ kind: 'corrupt-header', value: 65534 });
    peer.transmit(makeFrame(OWN, PEER, 100, 1));
    peer.transmit(makeFrame(OWN, PEER, 100, 2));
    expect(spi.read16(S0_RX, 0)).toBe(65534);
    expect(spi.read16(S0_RX, 102)).toBe(102);
    expect(spi.read16(S0, 0x0026)).toBe(204);
    chip.injectFault({ kind: 'corrupt-header', value: 1, sticky: true });
    peer.transmit(makeFrame(OWN, PEER, 100, 3));
    peer.transmit(makeFrame(OWN, PEER, 100, 4));
    expect([spi.read16(S0_RX, 204), spi.read16(S0_RX, 306)]).toEqual([1, 1]);
    // Sticky until socket 0 is opened again.
    spi.write(S0, 0x0001, [0x10]);
    spi.settle();
    spi.write(S0, 0x0001, [0x01]);
    spi.settle();
    peer.transmit(makeFrame(OWN, PEER, 100, 5));
    expect(spi.read16(S0_RX, 0)).toBe(102);
    expect(chip.strictViolations).toEqual([]);
  });

  it('missed edge: INTn stays high although an enabled interrupt is set, until it is cleared and rises anew', () => {
    const { chip, spi, peer } = w5500Lab();
    spi.openMacraw();
    spi.write(COMMON, 0x0018, [0x01]);
    chip.injectFault({ kind: 'missed-edge' });
    peer.transmit(makeFrame(OWN, PEER, 60));
    expect(spi.read8(COMMON, 0x0017)).toBe(1);
    expect(chip.interruptAsserted).toBe(false);
    spi.write(S0, 0x0002, [0x04]);
    peer.transmit(makeFrame(OWN, PEER, 60));
    expect(chip.interruptAsserted).toBe(true);
  });

  it('link drop mid-transmission: the frame is lost, no SEND_OK, TX_RD stays, and later SENDs go nowhere until the socket is opened again', () => {
    const { chip, spi, received } = w5500Lab();
    spi.openMacraw();
    chip.injectFault({ kind: 'link-drop-mid-tx', downMs: 5 });
    send(spi, makeFrame(PEER, OWN, 1000));
    spi.settle(0.2);
    expect(spi.read8(COMMON, 0x002e) & 0x01).toBe(0);
    expect(chip.transmitterStuck()).toBe(true);
    spi.settle(10);
    expect(spi.read8(COMMON, 0x002e) & 0x01).toBe(1);
    send(spi, makeFrame(PEER, OWN, 100));
    spi.settle(1);
    expect(received).toHaveLength(0);
    expect(spi.read8(S0, 0x0002) & 0x10).toBe(0);
    expect(spi.read16(S0, 0x0022)).toBe(0);
    spi.write(S0, 0x0001, [0x10]);
    spi.settle();
    spi.write(S0, 0x0001, [0x01]);
    spi.settle();
    send(spi, makeFrame(PEER, OWN, 100, 3));
    spi.settle(1);
    expect(received).toHaveLength(1);
    expect(chip.strictViolations).toEqual([]);
  });

  it('stuck command: Sn_CR keeps reading the command until a reset; writing over it then is the fault\'s doing, not reported', () => {
    const { chip, spi } = w5500Lab();
    spi.openMacraw();
    chip.injectFault({ kind: 'stuck-command' });
    spi.write(S0, 0x0001, [0x10]);
    spi.settle(10);
    expect(spi.read8(S0, 0x0001)).toBe(0x10);
    expect(spi.read8(S0, 0x0003)).toBe(0x42);
    spi.write(S0, 0x0001, [0x10]);
    spi.write(COMMON, 0x0000, [0x80]);
    spi.settle(1);
    expect(spi.read8(S0, 0x0001)).toBe(0x00);
    expect(chip.strictViolations).toEqual([]);
  });

  it('a chip that stops answering reads all zeros or all ones, ignores writes, and comes back as it was', () => {
    const { chip, spi } = w5500Lab();
    chip.setMiso('zeros');
    expect(spi.frame(COMMON, 0x0039, false, [0])).toEqual([0, 0, 0, 0]);
    spi.write(COMMON, 0x0009, [...OWN]);
    chip.setMiso('ones');
    expect(spi.frame(COMMON, 0x0039, false, [0])).toEqual([0xff, 0xff, 0xff, 0xff]);
    chip.setMiso('normal');
    expect(spi.read8(COMMON, 0x0039)).toBe(0x04);
    expect(spi.read(COMMON, 0x0009, 6)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(chip.strictViolations).toEqual([]);
  });
});
