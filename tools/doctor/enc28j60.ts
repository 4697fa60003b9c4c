import type { Hal } from '../../src/drivers/hal.js';
import { Enc28j60Nic } from '../../src/drivers/enc28j60/driver.js';
import { hex, type ChipProbes } from './probes.js';

/**
 * `spinet doctor`'s probes for the ENC28J60: plain SPI commands (DS-ENC §4, Table 4-1).
 */

// SPI opcodes and registers (DS-ENC Table 3-1, 4-1). Kept here: the doctor must not depend on the
// driver it is there to rule out.
const RCR = 0x00, WCR = 0x40, BFS = 0x80, BFC = 0xa0, RBM = 0x3a, WBM = 0x7a, SRC = 0xff;
const EIE = 0x1b, EIR = 0x1c, ESTAT = 0x1d, ECON2 = 0x1e, ECON1 = 0x1f;
const ERDPTL = 0x00, EWRPTL = 0x02, ERXNDL = 0x0a, EDMASTL = 0x10, EDMANDL = 0x12, EDMADSTL = 0x14;
const EREVID = 0x12, MISTAT = 0x0a, MICMD = 0x12, MIREGADR = 0x14, MIRDH = 0x19;
const PHSTAT2 = 0x11, PHSTAT2_LSTAT_HIGH = 0x04;
const KNOWN_REVISIONS: Record<number, string> = { 0x02: 'B1', 0x04: 'B4', 0x05: 'B5', 0x06: 'B7' };
/** Scratch area for the memory test: the top of the buffer, beyond any receive ring at reset. */
const SCRATCH = 0x1e00;

const tx = (...bytes: number[]) => ({ write: Uint8Array.from(bytes) });
const rd = (opcode: number) => ({ write: Uint8Array.of(opcode), read: 1 });
const bank = (b: number) => [tx(BFC | ECON1, 0x03), ...(b ? [tx(BFS | ECON1, b)] : [])];

export function enc28j60Probes(hal: Hal): ChipProbes {
  const spi = (batch: Parameters<Hal['spi']['transfer']>[0]) => hal.spi.transfer(batch);
  return {
    chip: 'ENC28J60',
    order: ['memory', 'interrupt', 'reset', 'link'],

    // A soft reset (errata #2: wait 1 ms or more), then three registers with known values.
    async identify() {
      await spi([tx(BFC | ECON2, 0x20)]); // leave power-save, or SRC is ignored (errata #19)
      await hal.delay(0.3);
      await spi([tx(SRC)]);
      await hal.delay(2);
      const id = await spi([rd(RCR | ESTAT), rd(RCR | ECON2), ...bank(3), rd(RCR | EREVID), ...bank(0)]);
      const [estat, econ2, revid] = [id[0]!, id[1]!, id[2]!];
      const revision = KNOWN_REVISIONS[revid];
      return {
        bytes: [estat, econ2, revid],
        text: `ESTAT 0x${hex(estat)}, ECON2 0x${hex(econ2)}, EREVID 0x${hex(revid)}`,
        ...(revision && econ2 === 0x80 ? { recognised: `ENC28J60 rev. ${revision}` } : {}),
      };
    },

    // Patterns written with WBM and read back with RBM.
    async openMemory() {
      return {
        async roundTrip(pattern) {
          return spi([
            tx(WCR | EWRPTL, SCRATCH & 0xff), tx(WCR | (EWRPTL + 1), SCRATCH >> 8),
            { write: Uint8Array.of(WBM, ...pattern) },
            tx(WCR | ERDPTL, SCRATCH & 0xff), tx(WCR | (ERDPTL + 1), SCRATCH >> 8),
            { write: Uint8Array.of(RBM), read: pattern.length },
          ]);
        },
        close: async () => undefined,
      };
    },

    // A one-byte DMA copy raises DMAIF; with DMAIE and INTIE the chip pulls INT low (DS-ENC §12.1.3).
    async raiseInterrupt() {
      await spi([
        tx(BFC | EIR, 0x20),
        tx(WCR | EDMASTL, SCRATCH & 0xff), tx(WCR | (EDMASTL + 1), SCRATCH >> 8),
        tx(WCR | EDMANDL, SCRATCH & 0xff), tx(WCR | (EDMANDL + 1), SCRATCH >> 8),
        tx(WCR | EDMADSTL, (SCRATCH + 0x10) & 0xff), tx(WCR | (EDMADSTL + 1), (SCRATCH + 0x10) >> 8),
        tx(WCR | EIE, 0x80 | 0x20),
        tx(BFS | ECON1, 0x20),
      ]);
      await hal.delay(5);
      const eir = (await spi([rd(RCR | EIR)]))[0]!;
      await spi([tx(WCR | EIE, 0), tx(BFC | EIR, 0x20)]);
      await hal.delay(1);
      if (eir & 0x20) return { raised: true, what: 'DMAIF' };
      return { raised: false, detail: `the chip did not finish a DMA copy (EIR 0x${hex(eir)})`, fix: 'the chip is not working reliably: check its power and its 25 MHz crystal' };
    },

    // ERXND resets to 0x1FFF (DS-ENC Table 3-2).
    resetProbe: {
      register: 'ERXND',
      resetValue: 0x1fff,
      pulseMs: 1,
      readyMs: 1,
      spoil: async () => void (await spi([tx(WCR | ERXNDL, 0x34), tx(WCR | (ERXNDL + 1), 0x02)])),
      async read() {
        const r = await spi([rd(RCR | ERXNDL), rd(RCR | (ERXNDL + 1))]);
        return r[0]! | (r[1]! << 8);
      },
    },

    // PHSTAT2.LSTAT through MII (DS-ENC §3.3.1).
    async link() {
      await spi([...bank(2), tx(WCR | MIREGADR, PHSTAT2), tx(WCR | MICMD, 0x01), ...bank(0)]);
      await hal.delay(0.05);
      const mii = await spi([...bank(3), { write: Uint8Array.of(RCR | MISTAT), read: 2 }, ...bank(2), tx(WCR | MICMD, 0), { write: Uint8Array.of(RCR | MIRDH), read: 2 }, ...bank(0)]);
      const up = (mii[3]! & PHSTAT2_LSTAT_HIGH) !== 0;
      return { up, detail: up ? 'the PHY sees a link (10BASE-T)' : 'the PHY sees no link (PHSTAT2.LSTAT clear)' };
    },

    nic: (config) => new Enc28j60Nic(config),
  };
}
