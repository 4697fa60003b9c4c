/**
 * The ENC28J60 register map as the emulator sees it (DS39662E Table 3-1/3-2).
 *
 * Deliberately independent of the driver's own table (src/drivers/enc28j60/registers.ts): the
 * emulator is the oracle the driver is tested against, so a wrong address in one must not be
 * hidden by the same mistake in the other.
 */

/** [bank, address] of every named control register. Common registers use bank -1. */
export const EMU_REGISTERS = {
  // Bank 0
  ERDPTL: [0, 0x00], ERDPTH: [0, 0x01], EWRPTL: [0, 0x02], EWRPTH: [0, 0x03],
  ETXSTL: [0, 0x04], ETXSTH: [0, 0x05], ETXNDL: [0, 0x06], ETXNDH: [0, 0x07],
  ERXSTL: [0, 0x08], ERXSTH: [0, 0x09], ERXNDL: [0, 0x0a], ERXNDH: [0, 0x0b],
  ERXRDPTL: [0, 0x0c], ERXRDPTH: [0, 0x0d], ERXWRPTL: [0, 0x0e], ERXWRPTH: [0, 0x0f],
  EDMASTL: [0, 0x10], EDMASTH: [0, 0x11], EDMANDL: [0, 0x12], EDMANDH: [0, 0x13],
  EDMADSTL: [0, 0x14], EDMADSTH: [0, 0x15], EDMACSL: [0, 0x16], EDMACSH: [0, 0x17],
  // Bank 1
  EHT0: [1, 0x00], EHT1: [1, 0x01], EHT2: [1, 0x02], EHT3: [1, 0x03],
  EHT4: [1, 0x04], EHT5: [1, 0x05], EHT6: [1, 0x06], EHT7: [1, 0x07],
  EPMM0: [1, 0x08], EPMM1: [1, 0x09], EPMM2: [1, 0x0a], EPMM3: [1, 0x0b],
  EPMM4: [1, 0x0c], EPMM5: [1, 0x0d], EPMM6: [1, 0x0e], EPMM7: [1, 0x0f],
  EPMCSL: [1, 0x10], EPMCSH: [1, 0x11], EPMOL: [1, 0x14], EPMOH: [1, 0x15],
  ERXFCON: [1, 0x18], EPKTCNT: [1, 0x19],
  // Bank 2 (MAC and MII: read with a dummy byte)
  MACON1: [2, 0x00], MACON3: [2, 0x02], MACON4: [2, 0x03], MABBIPG: [2, 0x04],
  MAIPGL: [2, 0x06], MAIPGH: [2, 0x07], MACLCON1: [2, 0x08], MACLCON2: [2, 0x09],
  MAMXFLL: [2, 0x0a], MAMXFLH: [2, 0x0b], MICMD: [2, 0x12], MIREGADR: [2, 0x14],
  MIWRL: [2, 0x16], MIWRH: [2, 0x17], MIRDL: [2, 0x18], MIRDH: [2, 0x19],
  // Bank 3. MAADR5 is the first octet on the wire, MAADR0 the last (DS-ENC Table 3-1 ordering).
  MAADR1: [3, 0x00], MAADR0: [3, 0x01], MAADR3: [3, 0x02], MAADR2: [3, 0x03],
  MAADR5: [3, 0x04], MAADR4: [3, 0x05], EBSTSD: [3, 0x06], EBSTCON: [3, 0x07],
  EBSTCSL: [3, 0x08], EBSTCSH: [3, 0x09], MISTAT: [3, 0x0a], EREVID: [3, 0x12],
  ECOCON: [3, 0x15], EFLOCON: [3, 0x17], EPAUSL: [3, 0x18], EPAUSH: [3, 0x19],
  // Common to every bank
  EIE: [-1, 0x1b], EIR: [-1, 0x1c], ESTAT: [-1, 0x1d], ECON2: [-1, 0x1e], ECON1: [-1, 0x1f],
} as const satisfies Record<string, readonly [number, number]>;

export type EmuRegisterName = keyof typeof EMU_REGISTERS;

/** PHY registers (reached through MIREGADR/MICMD/MIWR/MIRD). */
export const EMU_PHY = {
  PHCON1: 0x00, PHSTAT1: 0x01, PHID1: 0x02, PHID2: 0x03, PHCON2: 0x10,
  PHSTAT2: 0x11, PHIE: 0x12, PHIR: 0x13, PHLCON: 0x14,
} as const;

/** MAC and MII registers: RCR shifts out a dummy byte first; BFS/BFC do not apply (DS-ENC §4.2.1, §4.2.5). */
export function isMacMiiRegister(bank: number, address: number): boolean {
  if (bank === 2) return address <= 0x19;
  if (bank === 3) return address <= 0x05 || address === 0x0a;
  return false;
}
