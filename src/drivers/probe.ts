import type { Hal, SpiTransaction } from './hal.js';
import * as E from './enc28j60/registers.js';
import * as W from './w5500/registers.js';

/**
 * Which Ethernet chip answers on the board's SPI bus (`--chip auto`): a W5500 or an ENC28J60, told
 * apart by a read that only one of them answers, and that does nothing to the other.
 *
 * W5500 first: one SPI frame reading VERSIONR (0x0039, always 0x04: DS-W §4.1), full duplex. A
 * W5500 also returns 0x01 0x02 0x03 on MISO while the frame's three header bytes are clocked
 * (docs/w5500.md, SPI frame), which an ENC28J60 cannot: it answers this frame as an RCR of ERDPTL.
 * Then the ENC28J60: bank 3, EREVID (DS-ENC Table 3-2), bank 0 again. These are two-byte
 * transactions, which a W5500 ignores (CS rises before its control byte) — but a W5500 returns
 * 0x02 during the second byte of any frame, which would read as EREVID B1: so the W5500 goes first.
 */
export type ProbedChip = { readonly chip: 'w5500'; readonly detail: string } | { readonly chip: 'enc28j60'; readonly detail: string };

export class ChipProbeError extends Error {
  readonly code = 'ENODEV';
  constructor(
    message: string,
    /** Every byte the probe read (all 0xFF: MISO floats; all 0x00: MISO is held low). */
    readonly readings: readonly number[],
    /** What those bytes were, in words. */
    readonly seen: string,
  ) {
    super(message);
    this.name = 'ChipProbeError';
  }
}

export async function probeChip(hal: Hal): Promise<ProbedChip> {
  const w5500: SpiTransaction = {
    write: Uint8Array.of(W.VERSIONR >> 8, W.VERSIONR & 0xff, W.BSB_COMMON | W.OM_VDM),
    read: 1,
    duplex: true,
  };
  const w = await hal.spi.transfer([w5500]);
  if (W.HEADER_ECHO.every((b, i) => w[i] === b)) {
    if (w[3] === W.W5500_VERSION) return { chip: 'w5500', detail: 'VERSIONR 0x04' };
    // Its echo would read as an EREVID: this is no ENC28J60 either.
    const seen = `header 01 02 03, VERSIONR 0x${hex(w[3]!)}`;
    throw new ChipProbeError(
      `the SPI device answers like a WIZnet chip (0x01 0x02 0x03 during the frame header) but VERSIONR reads 0x${hex(w[3]!)}, not 0x04: not a W5500 (a W5100S or W6100?) — spinet drives the W5500 and the ENC28J60`,
      [...w],
      seen,
    );
  }

  const enc: SpiTransaction[] = [
    { write: Uint8Array.of(E.OP_BFS | E.ECON1, E.ECON1_BSEL) },
    { write: Uint8Array.of(E.OP_RCR | (E.EREVID & 0x1f)), read: 1 },
    { write: Uint8Array.of(E.OP_BFC | E.ECON1, E.ECON1_BSEL) },
  ];
  const revid = (await hal.spi.transfer(enc))[0]!;
  const revision = E.KNOWN_REVISIONS.get(revid);
  if (revision) return { chip: 'enc28j60', detail: `EREVID 0x${hex(revid)}, rev. ${revision}` };

  const seen = `W5500 VERSIONR read 0x${hex(w[3]!)}, ENC28J60 EREVID read 0x${hex(revid)}`;
  const miso = w.every((b) => b === 0) && revid === 0 ? 'MISO is held low' : w.every((b) => b === 0xff) && revid === 0xff ? 'MISO is floating high' : 'neither chip answers as it should';
  throw new ChipProbeError(
    `no W5500 or ENC28J60 answers on SPI (${seen}: ${miso}) — check the SPI wiring (MISO, MOSI, SCK), the chip-select pin (D10), 3.3 V power and the reset line; or name the chip with --chip`,
    [...w, revid],
    seen,
  );
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
