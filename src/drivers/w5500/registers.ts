/**
 * W5500 registers, bits and the SPI frame (WIZnet W5500 datasheet v1.0.9, "DS-W" below; the facts
 * and their sources are collected in docs/w5500.md).
 *
 * There are no banks: every SPI frame names its block (common registers, a socket's registers, a
 * socket's TX or RX buffer) in the control byte, and carries a 16-bit offset within it. Multi-byte
 * registers are big-endian (the first address holds the high byte).
 */

// ---- SPI frame (DS-W §2.2; the control phase §2.2.2) --------------------------------------------

/** Bits 7:3 of the control byte: Block Select (BSB). */
export const BSB_COMMON = 0x00;
/** Socket n's register block (BSB = 4n + 1). */
export const bsbSocketRegisters = (socket: number) => (socket * 4 + 1) << 3;
/** Socket n's TX buffer (BSB = 4n + 2). */
export const bsbSocketTx = (socket: number) => (socket * 4 + 2) << 3;
/** Socket n's RX buffer (BSB = 4n + 3). */
export const bsbSocketRx = (socket: number) => (socket * 4 + 3) << 3;
/** Bit 2: RWB, 1 = write. */
export const CONTROL_WRITE = 0x04;
/** Bits 1:0: OM. 00 = variable data length (VDM): the frame ends when SCSn goes high (§2.3). */
export const OM_VDM = 0x00;
/** Fixed data length (FDM, §2.4), for SCSn tied low: 1, 2 or 4 data bytes per frame. */
export const OM_FDM1 = 0x01;
export const OM_FDM2 = 0x02;
export const OM_FDM4 = 0x03;
/** Bytes before the data phase: offset high, offset low, control. */
export const FRAME_HEADER_BYTES = 3;
/** What MISO carries while the three header bytes are clocked (ZEPHYR-W5500; docs/w5500.md). */
export const HEADER_ECHO = Uint8Array.of(0x01, 0x02, 0x03);

// ---- Common register block (DS-W §3.1, §4.1) ----------------------------------------------------

export const MR = 0x0000;
export const GAR = 0x0001; // 4 bytes
export const SUBR = 0x0005; // 4 bytes
export const SHAR = 0x0009; // 6 bytes, first octet first
export const SIPR = 0x000f; // 4 bytes
export const INTLEVEL = 0x0013; // 2 bytes
export const IR = 0x0015;
export const IMR = 0x0016;
export const SIR = 0x0017;
export const SIMR = 0x0018;
export const RTR = 0x0019; // 2 bytes
export const RCR = 0x001b;
export const PTIMER = 0x001c;
export const PMAGIC = 0x001d;
export const PHAR = 0x001e; // 6 bytes
export const PSID = 0x0024; // 2 bytes
export const PMRU = 0x0026; // 2 bytes
export const UIPR = 0x0028; // 4 bytes
export const UPORTR = 0x002c; // 2 bytes
export const PHYCFGR = 0x002e;
export const VERSIONR = 0x0039;

/** MR bits (§4.1 MR): RST self-clears when the reset is done. */
export const MR_RST = 0x80;
export const MR_WOL = 0x20;
/** Ping block: the chip's own ICMP echo reply is off (the host's stack answers pings). */
export const MR_PB = 0x10;
export const MR_PPPOE = 0x08;
export const MR_FARP = 0x02;

/** PHYCFGR bits (§4.1 PHYCFGR). RST: write 0 to reset the PHY, then 1. DPX/SPD/LNK are read-only. */
export const PHYCFGR_RST = 0x80;
export const PHYCFGR_OPMD = 0x40;
export const PHYCFGR_OPMDC_MASK = 0x38;
export const PHYCFGR_OPMDC_ALL_AUTONEG = 0x38;
export const PHYCFGR_DPX = 0x04;
export const PHYCFGR_SPD = 0x02;
export const PHYCFGR_LNK = 0x01;

/** VERSIONR always reads 0x04 on a W5500 (§4.1 VERSIONR). */
export const W5500_VERSION = 0x04;
/** RTR's reset value: 2000 × 100 µs = 200 ms (§4.1 RTR); LNX-WIZ checks it to recognise the chip. */
export const RTR_RESET = 0x07d0;
/** RCR's reset value (§4.1 RCR). */
export const RCR_RESET = 0x08;

// ---- Socket register block (DS-W §3.2, §4.2) -----------------------------------------------------

export const Sn_MR = 0x0000;
export const Sn_CR = 0x0001;
export const Sn_IR = 0x0002;
export const Sn_SR = 0x0003;
export const Sn_PORT = 0x0004; // 2 bytes
export const Sn_DHAR = 0x0006; // 6 bytes
export const Sn_DIPR = 0x000c; // 4 bytes
export const Sn_DPORT = 0x0010; // 2 bytes
export const Sn_MSSR = 0x0012; // 2 bytes
export const Sn_TOS = 0x0015;
export const Sn_TTL = 0x0016;
export const Sn_RXBUF_SIZE = 0x001e;
export const Sn_TXBUF_SIZE = 0x001f;
export const Sn_TX_FSR = 0x0020; // 2 bytes
export const Sn_TX_RD = 0x0022; // 2 bytes
export const Sn_TX_WR = 0x0024; // 2 bytes
export const Sn_RX_RSR = 0x0026; // 2 bytes
export const Sn_RX_RD = 0x0028; // 2 bytes
export const Sn_RX_WR = 0x002a; // 2 bytes
export const Sn_IMR = 0x002c;
export const Sn_FRAG = 0x002d; // 2 bytes
export const Sn_KPALVTR = 0x002f;

/** Sn_MR protocol (bits 3:0) and the MACRAW options (§4.2 Sn_MR). MACRAW is socket 0's only. */
export const Sn_MR_CLOSED = 0x00;
export const Sn_MR_MACRAW = 0x04;
/** MAC filter (MACRAW): only frames to SHAR and broadcasts are received. 0x40 on the W5100/W5200. */
export const Sn_MR_MFEN = 0x80;
/** Broadcast blocking (MACRAW and UDP). */
export const Sn_MR_BCASTB = 0x40;
/** Multicast blocking (MACRAW). */
export const Sn_MR_MMB = 0x20;
/** IPv6 blocking (MACRAW): frames of EtherType 0x86DD are dropped. */
export const Sn_MR_MIP6B = 0x10;

/** Sn_CR commands (§4.2 Sn_CR, p.46–47). Sn_CR reads 0 once the chip has accepted the command. */
export const Sn_CR_OPEN = 0x01;
export const Sn_CR_CLOSE = 0x10;
export const Sn_CR_SEND = 0x20;
export const Sn_CR_RECV = 0x40;

/** Sn_IR bits (§4.2 Sn_IR): write 1 to clear. A bit is only ever set when its Sn_IMR bit is set. */
export const Sn_IR_SEND_OK = 0x10;
export const Sn_IR_TIMEOUT = 0x08;
export const Sn_IR_RECV = 0x04;
export const Sn_IR_DISCON = 0x02;
export const Sn_IR_CON = 0x01;

/** Sn_SR states used here (§4.2 Sn_SR, p.49–50; v1.0's "0x02" for MACRAW is a misprint). */
export const SOCK_CLOSED = 0x00;
export const SOCK_MACRAW = 0x42;

/** Buffer sizes in KB that Sn_RXBUF_SIZE / Sn_TXBUF_SIZE accept (§4.2); 16 KB of each in total. */
export const BUFFER_SIZES_KB: readonly number[] = [0, 1, 2, 4, 8, 16];
export const TOTAL_BUFFER_KB = 16;

/**
 * MACRAW receive format (docs/w5500.md, MACRAW): a 2-byte big-endian length that counts itself, then
 * the frame from the destination MAC to the end of the payload, without FCS.
 */
export const MACRAW_HEADER_BYTES = 2;
/** The largest frame MACRAW carries (Sn_MSSR in MACRAW: 1514, not segmented by the chip, §4.2). */
export const MACRAW_MAX_FRAME = 1514;
