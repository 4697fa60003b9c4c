/**
 * ENC28J60 chip facts: registers, bits, SPI opcodes, buffer layout and timings (datasheet
 * DS39662E, "DS-ENC" below, with its section or page; silicon errata DS80349C by item number).
 * docs/enc28j60.md collects them with their sources.
 *
 * A register is encoded in one number: address in bits 4:0, bank in bits 6:5, and bit 7 set for
 * MAC/MII registers, which RCR reads with a dummy byte first (DS-ENC Figure 4-4). Addresses
 * 0x1B–0x1F are the same in every bank (DS-ENC Table 3-1).
 */
const MAC_MII = 0x80;
const bank = (n: number, address: number, macMii = false) => address | (n << 5) | (macMii ? MAC_MII : 0);

// SPI instruction set (DS-ENC Table 4-1).
export const OP_RCR = 0x00;
export const OP_RBM = 0x3a;
export const OP_WCR = 0x40;
export const OP_WBM = 0x7a;
export const OP_BFS = 0x80;
export const OP_BFC = 0xa0;
export const OP_SRC = 0xff;

// Common to all banks.
export const EIE = 0x1b;
export const EIR = 0x1c;
export const ESTAT = 0x1d;
export const ECON2 = 0x1e;
export const ECON1 = 0x1f;

// Bank 0.
export const ERDPTL = bank(0, 0x00);
export const ERDPTH = bank(0, 0x01);
export const EWRPTL = bank(0, 0x02);
export const EWRPTH = bank(0, 0x03);
export const ETXSTL = bank(0, 0x04);
export const ETXSTH = bank(0, 0x05);
export const ETXNDL = bank(0, 0x06);
export const ETXNDH = bank(0, 0x07);
export const ERXSTL = bank(0, 0x08);
export const ERXSTH = bank(0, 0x09);
export const ERXNDL = bank(0, 0x0a);
export const ERXNDH = bank(0, 0x0b);
export const ERXRDPTL = bank(0, 0x0c);
export const ERXRDPTH = bank(0, 0x0d);
export const ERXWRPTL = bank(0, 0x0e);
export const ERXWRPTH = bank(0, 0x0f);

// Bank 1.
export const EHT0 = bank(1, 0x00);
export const ERXFCON = bank(1, 0x18);
export const EPKTCNT = bank(1, 0x19);

// Bank 2: MAC and MII.
export const MACON1 = bank(2, 0x00, true);
export const MACON3 = bank(2, 0x02, true);
export const MACON4 = bank(2, 0x03, true);
export const MABBIPG = bank(2, 0x04, true);
export const MAIPGL = bank(2, 0x06, true);
export const MAIPGH = bank(2, 0x07, true);
export const MAMXFLL = bank(2, 0x0a, true);
export const MAMXFLH = bank(2, 0x0b, true);
export const MICMD = bank(2, 0x12, true);
export const MIREGADR = bank(2, 0x14, true);
export const MIWRL = bank(2, 0x16, true);
export const MIWRH = bank(2, 0x17, true);
export const MIRDL = bank(2, 0x18, true);
export const MIRDH = bank(2, 0x19, true);

// Bank 3. The station address is stored "byte-backward": MAADR5 holds the first octet on the wire
// (DS-ENC Table 3-1).
export const MAADR1 = bank(3, 0x00, true);
export const MAADR0 = bank(3, 0x01, true);
export const MAADR3 = bank(3, 0x02, true);
export const MAADR2 = bank(3, 0x03, true);
export const MAADR5 = bank(3, 0x04, true);
export const MAADR4 = bank(3, 0x05, true);
export const MISTAT = bank(3, 0x0a, true);
export const EREVID = bank(3, 0x12);
/** MAADR registers in the order of the address octets, first octet first. */
export const MAADR_BY_OCTET = [MAADR5, MAADR4, MAADR3, MAADR2, MAADR1, MAADR0] as const;

// PHY registers (through MII).
export const PHCON1 = 0x00;
export const PHSTAT1 = 0x01;
export const PHCON2 = 0x10;
export const PHSTAT2 = 0x11;
export const PHIE = 0x12;
export const PHIR = 0x13;
export const PHLCON = 0x14;

// Bits.
export const EIE_INTIE = 0x80;
export const EIE_PKTIE = 0x40;
export const EIE_LINKIE = 0x10;
export const EIE_TXIE = 0x08;
export const EIE_TXERIE = 0x02;
export const EIE_RXERIE = 0x01;
export const EIR_PKTIF = 0x40;
export const EIR_DMAIF = 0x20;
export const EIR_LINKIF = 0x10;
export const EIR_TXIF = 0x08;
export const EIR_TXERIF = 0x02;
export const EIR_RXERIF = 0x01;
export const ESTAT_CLKRDY = 0x01;
export const ECON2_AUTOINC = 0x80;
export const ECON2_PKTDEC = 0x40;
export const ECON2_PWRSV = 0x20;
export const ECON2_VRPS = 0x08;
export const ECON1_TXRST = 0x80;
export const ECON1_RXRST = 0x40;
export const ECON1_TXRTS = 0x08;
export const ECON1_RXEN = 0x04;
export const ECON1_BSEL = 0x03;
export const ECON1_BSEL0 = 0x01;
export const ERXFCON_UCEN = 0x80;
export const ERXFCON_CRCEN = 0x20;
export const ERXFCON_MCEN = 0x02;
export const ERXFCON_BCEN = 0x01;
export const MACON1_TXPAUS = 0x08;
export const MACON1_RXPAUS = 0x04;
export const MACON1_MARXEN = 0x01;
export const MACON3_PADCFG0 = 0x20;
export const MACON3_TXCRCEN = 0x10;
export const MACON3_FRMLNEN = 0x02;
export const MACON3_FULDPX = 0x01;
export const MACON4_DEFER = 0x40;
export const MICMD_MIIRD = 0x01;
export const MISTAT_BUSY = 0x01;
export const PHCON1_PDPXMD = 0x0100;
export const PHCON2_HDLDIS = 0x0100;
export const PHSTAT2_LSTAT = 0x0400;
export const PHIE_PGEIE = 0x0002;
export const PHIE_PLNKIE = 0x0010;

/**
 * Values read back when nothing drives MISO: a floating line reads 0xFF, one pulled low 0x00.
 * Three registers that all read one of them mean no chip answers.
 */
export const MISO_FLOATING = 0xff;
export const MISO_LOW = 0x00;

// ---- Buffer memory (DS-ENC §3.2) ----

/** The buffer memory shared by the receive ring and the transmit buffers: 0x0000–0x1FFF (p.17). */
export const BUFFER_BYTES = 0x2000;
/** In front of every received packet: next packet pointer (2) and receive status vector (4) (§7.2.2, p.43). */
export const RX_HEADER_BYTES = 6;
/** The per-packet control byte written at ETXST, in front of a frame to send (§7.1, p.39). */
export const TX_CONTROL_BYTES = 1;
/** The transmit status vector the chip writes after a sent frame, at ETXND + 1 (§7.1, p.40–41). */
export const TSV_BYTES = 7;
/** RSV bit 23 (status byte 0, bit 7): received OK (DS-ENC Table 7-3). */
export const RSV_RECEIVED_OK = 0x0080;
/** RSV bit 31 (status byte 1, bit 7): always zero (DS-ENC Table 7-3); set means the header is not one. */
export const RSV_ZERO = 0x8000;

// ---- Timings ----

/**
 * After power-up or a RESET pulse the oscillator start-up timer holds the chip 300 µs; until
 * ESTAT.CLKRDY is set only an ESTAT read works (DS-ENC §2.2).
 */
export const OSCILLATOR_STARTUP_MS = 0.3;
/** Leaving power-save mode (ECON2.PWRSV cleared) takes 300 µs before SRC works (errata #19). */
export const POWER_SAVE_EXIT_MS = 0.3;

// ---- Recommended MAC settings (DS-ENC §6.5) ----

/** MABBIPG, the back-to-back inter-packet gap: 0x15 in full duplex, 0x12 in half duplex. */
export const MABBIPG_FULL_DUPLEX = 0x15;
export const MABBIPG_HALF_DUPLEX = 0x12;
/** MAIPGL, the non-back-to-back inter-packet gap: 0x12 in either mode. */
export const MAIPGL_DEFAULT = 0x12;
/** MAIPGH: 0x0C in half duplex; unused (0) in full duplex. */
export const MAIPGH_HALF_DUPLEX = 0x0c;

/** Known EREVID values: B1, B4, B5, B7 (rev. B7 silicon reads 0x06, one above B5). */
export const KNOWN_REVISIONS: ReadonlyMap<number, string> = new Map([
  [0x02, 'B1'],
  [0x04, 'B4'],
  [0x05, 'B5'],
  [0x06, 'B7'],
]);

export function registerBank(register: number): number | undefined {
  return (register & 0x1f) >= 0x1b ? undefined : (register >> 5) & 0x03;
}

export function isMacMii(register: number): boolean {
  return (register & MAC_MII) !== 0;
}
