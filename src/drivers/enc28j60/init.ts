import type { Hal } from '../hal.js';
import { formatMac, type MacAddress } from '../../wire/address.js';
import type { BankTracker, CommandBatch } from './batch.js';
import type { Enc28j60Options } from './options.js';
import * as R from './registers.js';

/**
 * Bringing the ENC28J60 up, and the other register sequences that wait on their own answers:
 * the receiver reset, PHY reads, the link check. Each is a few batches in a row, run while no
 * other batch is out (DS-ENC §6 for the order; errata items by number where they apply).
 */

export type Enc28j60ErrorCode = 'ENODEV' | 'EIO';

export class Enc28j60Error extends Error {
  constructor(
    readonly code: Enc28j60ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'Enc28j60Error';
  }
}

/** What the sequences need from the driver: the HAL, its options, and its batches. */
export interface ChipAccess {
  readonly hal: Hal;
  readonly options: Enc28j60Options;
  readonly bank: BankTracker;
  /** A batch with the next sequence number. */
  newBatch(): CommandBatch;
}

/**
 * ECON2 as initialisation leaves it: AUTOINC, and VRPS, which no reset sets. Any other value read
 * later means the chip was reset underneath (SRC or power loss) and lost its configuration.
 */
export const ECON2_CONFIGURED = R.ECON2_AUTOINC | R.ECON2_VRPS;

/** ERXFCON: unicast to us, broadcast, good CRC only; every multicast group while any is joined. */
/**
 * ERXFCON. Promiscuous: no filter enabled, every frame accepted (DS-ENC §8); CRCEN stays, so
 * frames with a bad FCS are still dropped.
 */
export function receiveFilter(multicast: boolean, promiscuous = false): number {
  if (promiscuous) return R.ERXFCON_CRCEN;
  return R.ERXFCON_UCEN | R.ERXFCON_CRCEN | R.ERXFCON_BCEN | (multicast ? R.ERXFCON_MCEN : 0);
}

/** One batch and its answer. */
async function run(chip: ChipAccess, batch: CommandBatch): Promise<Uint8Array> {
  return chip.hal.spi.transfer(batch.finish());
}

/**
 * Wait for the oscillator, leave power-save mode and reset the chip with SRC. Returns once the
 * chip can be addressed again.
 */
export async function resetChip(chip: ChipAccess): Promise<void> {
  // After a RESET pulse or power-up (possibly underneath us) the chip ignores every command but
  // an ESTAT read until its oscillator has started (DS-ENC §2.2): wait for CLKRDY.
  let batch: CommandBatch;
  for (let attempt = 0; attempt < chip.options.clockReadyAttempts; attempt++) {
    batch = chip.newBatch();
    const estatAt = batch.read(R.ESTAT);
    const estat = (await run(chip, batch))[estatAt]!;
    if (estat & R.ESTAT_CLKRDY) break;
    await chip.hal.delay(R.OSCILLATOR_STARTUP_MS);
  }

  // Errata #19: SRC is ignored in power-save mode; leave it (and wait 300 µs) first.
  batch = chip.newBatch();
  const econ2At = batch.read(R.ECON2);
  batch.bitClear(R.ECON2, R.ECON2_PWRSV);
  const econ2 = (await run(chip, batch))[econ2At]!;
  if (econ2 & R.ECON2_PWRSV && econ2 !== R.MISO_FLOATING) await chip.hal.delay(R.POWER_SAVE_EXIT_MS);

  batch = chip.newBatch();
  batch.softReset();
  await run(chip, batch);
  await chip.hal.delay(chip.options.resetDelayMs); // errata #2: CLKRDY is set early after SRC
}

/** Read ESTAT, ECON2 and EREVID just after SRC: the silicon revision, or ENODEV. */
export async function identifyChip(chip: ChipAccess): Promise<string> {
  const batch = chip.newBatch();
  const estatAt = batch.read(R.ESTAT);
  const econ2At = batch.read(R.ECON2);
  const revAt = batch.read(R.EREVID);
  const r = await run(chip, batch);
  return verifyChip(r[estatAt]!, r[econ2At]!, r[revAt]!);
}

function verifyChip(estat: number, econ2: number, revid: number): string {
  const all = [estat, econ2, revid];
  if (all.every((b) => b === R.MISO_LOW) || all.every((b) => b === R.MISO_FLOATING)) {
    throw new Enc28j60Error(
      'ENODEV',
      `no ENC28J60 answering on SPI (ESTAT/ECON2/EREVID all read 0x${estat.toString(16).padStart(2, '0')}): ` +
        'MISO is floating or stuck — check wiring, chip select, power and the reset line',
    );
  }
  const revision = R.KNOWN_REVISIONS.get(revid);
  // SRC leaves ECON2 at its reset value, AUTOINC alone (DS-ENC Table 3-2).
  if (!revision || econ2 !== R.ECON2_AUTOINC) {
    throw new Enc28j60Error(
      'ENODEV',
      `the SPI device is not an ENC28J60 after reset (EREVID 0x${revid.toString(16)}, ECON2 0x${econ2.toString(16)}; ` +
        'expected EREVID 0x02/0x04/0x05/0x06 and ECON2 0x80) — wrong chip or wrong chip select?',
    );
  }
  return revision;
}

export interface ChipConfig {
  mac: MacAddress;
  /** First byte of the transmit buffers (right after the receive ring). */
  txStart: number;
  /** ERXFCON. */
  filter: number;
}

/**
 * Configure a freshly reset chip: buffer pointers, receive filter, MAC, station address, PHY
 * (DS-ENC §6.1–6.6); then read back what must have stuck. Returns whether the link is up
 * (PHSTAT2.LSTAT). Reception is still off: see enableReception().
 */
export async function configureChip(chip: ChipAccess, config: ChipConfig): Promise<boolean> {
  const o = chip.options;
  const { mac } = config;
  let batch = chip.newBatch();
  batch.write(R.ECON1, 0);
  batch.write(R.ECON2, ECON2_CONFIGURED);
  batch.write16(R.ERXSTL, 0); // errata #5: the receive buffer starts at 0
  batch.write16(R.ERXNDL, o.rxEnd);
  batch.write16(R.ERXRDPTL, o.rxEnd); // errata #14: odd
  batch.write16(R.ERDPTL, 0);
  batch.write16(R.ETXSTL, config.txStart);
  batch.write16(R.ETXNDL, config.txStart);
  batch.write(R.ERXFCON, config.filter);
  batch.write(R.MACON1, R.MACON1_MARXEN | (o.fullDuplex ? R.MACON1_TXPAUS | R.MACON1_RXPAUS : 0));
  batch.write(R.MACON3, R.MACON3_PADCFG0 | R.MACON3_TXCRCEN | R.MACON3_FRMLNEN | (o.fullDuplex ? R.MACON3_FULDPX : 0));
  batch.write(R.MACON4, o.fullDuplex ? 0 : R.MACON4_DEFER);
  batch.write(R.MABBIPG, o.fullDuplex ? R.MABBIPG_FULL_DUPLEX : R.MABBIPG_HALF_DUPLEX);
  batch.write(R.MAIPGL, R.MAIPGL_DEFAULT);
  batch.write(R.MAIPGH, o.fullDuplex ? 0x00 : R.MAIPGH_HALF_DUPLEX);
  batch.write16(R.MAMXFLL, o.maxFrameLength);
  R.MAADR_BY_OCTET.forEach((register, octet) => batch.write(register, mac[octet]!));
  phyWrite(batch, R.PHCON1, o.fullDuplex ? R.PHCON1_PDPXMD : 0);
  await run(chip, batch);
  await chip.hal.delay(o.miiDelayMs);

  // Errata #9: half-duplex loopback is unreliable; HDLDIS stops the PHY looping our frames back.
  for (const [register, value] of [
    [R.PHCON2, o.fullDuplex ? 0 : R.PHCON2_HDLDIS],
    [R.PHLCON, o.phyLedConfig],
    [R.PHIE, R.PHIE_PGEIE | R.PHIE_PLNKIE],
  ] as const) {
    batch = chip.newBatch();
    phyWrite(batch, register, value);
    await run(chip, batch);
    await chip.hal.delay(o.miiDelayMs);
  }

  // Read back what must have stuck, and the PHY state (PHIR read clears a stale LINKIF).
  batch = chip.newBatch();
  const maadrAt = R.MAADR_BY_OCTET.map((register) => batch.read(register));
  const erxndAt = [batch.read(R.ERXNDL), batch.read(R.ERXNDH)];
  batch.write(R.MIREGADR, R.PHIR);
  batch.write(R.MICMD, R.MICMD_MIIRD);
  const r = await run(chip, batch);
  const readBackMac = maadrAt.map((at) => r[at]!);
  const readBackEnd = r[erxndAt[0]!]! | (r[erxndAt[1]!]! << 8);
  if (readBackMac.some((b, i) => b !== mac[i]) || readBackEnd !== o.rxEnd) {
    throw new Enc28j60Error(
      'EIO',
      `ENC28J60 register writes do not stick (MAADR read back ${formatMac(Uint8Array.from(readBackMac))}, ` +
        `ERXND 0x${readBackEnd.toString(16)}): check SPI MOSI/SCK wiring and the CS hold time`,
    );
  }
  await chip.hal.delay(o.miiDelayMs);
  const phstat2 = await finishPhyReadAndRead(chip, R.PHSTAT2);
  return (phstat2 & R.PHSTAT2_LSTAT) !== 0;
}

/**
 * Clear stale flags, enable interrupts and reception. PKTIF is unreliable (errata #6) but still
 * raises INT; EPKTCNT is what the driver reads. TX completion is polled, not interrupted.
 */
export async function enableReception(chip: ChipAccess): Promise<void> {
  const batch = chip.newBatch();
  batch.bitClear(R.EIR, R.EIR_DMAIF | R.EIR_TXIF | R.EIR_TXERIF | R.EIR_RXERIF);
  batch.write(R.EIE, R.EIE_INTIE | R.EIE_PKTIE | R.EIE_LINKIE | R.EIE_RXERIE);
  batch.bitSet(R.ECON1, R.ECON1_RXEN);
  await run(chip, batch);
}

/**
 * Recovery from a corrupt ring: reception off, RXRST pulse, the ring as initialised, EPKTCNT
 * back to 0, reception on. Frames in the ring are lost. `homeBank`: the bank every batch ends in
 * from the second batch on (a receive program armed after the reset assumes it).
 */
export async function resetReceiveRing(chip: ChipAccess, homeBank: number | undefined): Promise<void> {
  const rxEnd = chip.options.rxEnd;
  let batch = chip.newBatch();
  batch.bitClear(R.ECON1, R.ECON1_RXEN);
  batch.bitSet(R.ECON1, R.ECON1_RXRST);
  batch.bitClear(R.ECON1, R.ECON1_RXRST);
  batch.write16(R.ERXSTL, 0); // errata #5
  batch.write16(R.ERXNDL, rxEnd);
  batch.write16(R.ERXRDPTL, rxEnd); // errata #14: odd
  batch.write16(R.ERDPTL, 0);
  const countAt = batch.read(R.EPKTCNT);
  const r = await run(chip, batch);
  if (homeBank !== undefined) chip.bank.home = homeBank;
  batch = chip.newBatch();
  // If RXRST left EPKTCNT standing, decrement it to 0 while reception is still off.
  for (let i = 0; i < r[countAt]!; i++) batch.bitSet(R.ECON2, R.ECON2_PKTDEC);
  batch.bitClear(R.EIR, R.EIR_RXERIF);
  batch.bitSet(R.ECON1, R.ECON1_RXEN);
  await run(chip, batch);
}

/** LINKIF: read PHIR (which clears it, DS-ENC §12.1.5), then PHSTAT2.LSTAT: is the link up? */
export async function readLink(chip: ChipAccess): Promise<boolean> {
  const batch = chip.newBatch();
  batch.write(R.MIREGADR, R.PHIR);
  batch.write(R.MICMD, R.MICMD_MIIRD);
  await run(chip, batch);
  await chip.hal.delay(chip.options.miiDelayMs);
  const phstat2 = await finishPhyReadAndRead(chip, R.PHSTAT2);
  return (phstat2 & R.PHSTAT2_LSTAT) !== 0;
}

/** Reception and interrupts off (the driver stops). */
export async function quiesce(chip: ChipAccess): Promise<void> {
  const batch = chip.newBatch();
  batch.write(R.EIE, 0);
  batch.bitClear(R.ECON1, R.ECON1_RXEN);
  await run(chip, batch);
}

/** MIREGADR, then MIWRL, MIWRH (writing MIWRH starts it; BUSY for 10.24 µs, DS-ENC §3.3.2). */
function phyWrite(batch: CommandBatch, register: number, value: number): void {
  batch.write(R.MIREGADR, register);
  batch.write16(R.MIWRL, value);
}

/** Finish an MII read started in the previous batch and start (and finish) a read of `next` (DS-ENC §3.3.1). */
async function finishPhyReadAndRead(chip: ChipAccess, next: number): Promise<number> {
  let batch = chip.newBatch();
  batch.write(R.MICMD, 0);
  batch.read(R.MIRDL);
  batch.read(R.MIRDH);
  batch.write(R.MIREGADR, next);
  batch.write(R.MICMD, R.MICMD_MIIRD);
  await run(chip, batch);
  await chip.hal.delay(chip.options.miiDelayMs);
  batch = chip.newBatch();
  batch.write(R.MICMD, 0);
  const lowAt = batch.read(R.MIRDL);
  const highAt = batch.read(R.MIRDH);
  const r = await run(chip, batch);
  return r[lowAt]! | (r[highAt]! << 8);
}
