/**
 * `--chip auto` (src/drivers/probe.ts) against the emulated chips and against an empty bus, over the
 * mock HAL: which chip answers, what the probe did to it, and the one line when nothing does.
 */
import { describe, expect, it } from 'vitest';
import type { VirtualClock } from '../../src/time/virtual-clock.js';
import { virtualBench } from '../support/virtual-bench.js';
import { MockHal, type SpiSlave } from '../../hal/mock/mock-hal.js';
import { W5500Emulator } from '../../hal/w5500/emulator.js';
import { Enc28j60Emulator } from '../../hal/enc28j60/emulator.js';
import { ChipProbeError, probeChip } from '../../src/drivers/probe.js';

const MAC = Uint8Array.of(0x02, 0x5e, 0, 0, 0, 0x0a);

/** The probe over a mock HAL on `slave`, virtual time advanced until it settles. */
async function probe(slave: SpiSlave | ((clock: VirtualClock) => SpiSlave)) {
  const bench = virtualBench();
  const hal = new MockHal({ clock: bench.clock, slave: typeof slave === 'function' ? slave(bench.clock) : slave, name: 'probe' });
  const result = await bench.settle(probeChip(hal).catch((error: unknown) => error));
  return { hal, result, bench };
}

/** A bus with nothing on it: MISO held at one level, every byte counted. */
function emptyBus(level: number): SpiSlave & { bytes: number } {
  return {
    bytes: 0,
    spiSelect() {},
    spiExchange() {
      this.bytes++;
      return level;
    },
    spiDeselect() {},
  };
}

describe('probeChip', () => {
  it('finds a W5500 by its VERSIONR and the 0x01 0x02 0x03 it returns during a frame header, and does nothing to it (strict: no report)', async () => {
    const violations: string[] = [];
    const { result } = await probe((clock) => new W5500Emulator({ clock, strict: true, onStrictViolation: (m) => violations.push(m) }));
    expect(result).toEqual({ chip: 'w5500', detail: 'VERSIONR 0x04' });
    expect(violations).toEqual([]);
  });

  it('finds an ENC28J60 by EREVID in bank 3 and leaves it in bank 0', async () => {
    const { result, hal, bench } = await probe((clock) => new Enc28j60Emulator({ clock, mac: MAC }));
    expect(result).toEqual({ chip: 'enc28j60', detail: 'EREVID 0x06, rev. B7' });
    // ECON1's bank bits are 0 again: an RCR of ECON1 (0x1F, in every bank) reads BSEL = 0.
    const econ1 = await bench.settle(hal.spi.transfer([{ write: Uint8Array.of(0x1f), read: 1 }]));
    expect(econ1[0]! & 0x03).toBe(0);
  });

  it('a WIZnet chip that reads some other VERSIONR is taken for neither (its header echo would read as EREVID B1)', async () => {
    const { result } = await probe((clock) => new W5500Emulator({ clock, version: 0x51 }));
    expect(result).toBeInstanceOf(ChipProbeError);
    expect((result as Error).message).toMatch(/answers like a WIZnet chip \(0x01 0x02 0x03 during the frame header\) but VERSIONR reads 0x51, not 0x04: not a W5500/);
  });

  for (const [level, what] of [
    [0xff, 'MISO is floating high'],
    [0x00, 'MISO is held low'],
  ] as const) {
    it(`with nothing on the bus (${what}) says so in one line, with what to check`, async () => {
      const bus = emptyBus(level);
      const { result: error } = await probe(bus);
      expect(error).toBeInstanceOf(ChipProbeError);
      expect((error as ChipProbeError).code).toBe('ENODEV');
      const message = (error as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toContain(`no W5500 or ENC28J60 answers on SPI (W5500 VERSIONR read 0x${level.toString(16).padStart(2, '0')}`);
      expect(message).toContain(what);
      expect(message).toMatch(/check the SPI wiring \(MISO, MOSI, SCK\), the chip-select pin \(D10\), 3\.3 V power and the reset line/);
      // One frame for the W5500, three two-byte transactions for the ENC28J60: 4 + 2 + 2 + 2 bytes.
      expect(bus.bytes).toBe(10);
    });
  }
});
