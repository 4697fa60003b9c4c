/**
 * The W5500 register map as the emulator sees it (DS-W §3.1–3.2, §4; docs/w5500.md).
 *
 * Deliberately independent of the driver's own table (src/drivers/w5500/registers.ts): the
 * emulator is the oracle the driver is tested against, so a wrong address in one must not be
 * hidden by the same mistake in the other.
 */

/** Common register block (BSB 0): name → [offset, width in bytes]. */
export const COMMON = {
  MR: [0x00, 1], GAR: [0x01, 4], SUBR: [0x05, 4], SHAR: [0x09, 6], SIPR: [0x0f, 4],
  INTLEVEL: [0x13, 2], IR: [0x15, 1], IMR: [0x16, 1], SIR: [0x17, 1], SIMR: [0x18, 1],
  RTR: [0x19, 2], RCR: [0x1b, 1], PTIMER: [0x1c, 1], PMAGIC: [0x1d, 1], PHAR: [0x1e, 6],
  PSID: [0x24, 2], PMRU: [0x26, 2], UIPR: [0x28, 4], UPORTR: [0x2c, 2], PHYCFGR: [0x2e, 1],
  VERSIONR: [0x39, 1],
} as const satisfies Record<string, readonly [number, number]>;

/** Socket register block (BSB 4n+1): name → [offset, width in bytes]. */
export const SOCKET = {
  Sn_MR: [0x00, 1], Sn_CR: [0x01, 1], Sn_IR: [0x02, 1], Sn_SR: [0x03, 1], Sn_PORT: [0x04, 2],
  Sn_DHAR: [0x06, 6], Sn_DIPR: [0x0c, 4], Sn_DPORT: [0x10, 2], Sn_MSSR: [0x12, 2], Sn_TOS: [0x15, 1],
  Sn_TTL: [0x16, 1], Sn_RXBUF_SIZE: [0x1e, 1], Sn_TXBUF_SIZE: [0x1f, 1], Sn_TX_FSR: [0x20, 2],
  Sn_TX_RD: [0x22, 2], Sn_TX_WR: [0x24, 2], Sn_RX_RSR: [0x26, 2], Sn_RX_RD: [0x28, 2],
  Sn_RX_WR: [0x2a, 2], Sn_IMR: [0x2c, 1], Sn_FRAG: [0x2d, 2], Sn_KPALVTR: [0x2f, 1],
} as const satisfies Record<string, readonly [number, number]>;

export type CommonRegisterName = keyof typeof COMMON;
export type SocketRegisterName = keyof typeof SOCKET;

/** Size of each block's register space: offsets past it are reserved. */
export const COMMON_SPACE = 0x3a;
export const SOCKET_SPACE = 0x30;

/** Common registers that only the chip changes (DS-W §4.1: [R]). */
export const COMMON_READ_ONLY: ReadonlySet<number> = new Set([0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x39]);
/** Common offsets the datasheet leaves reserved (0x2F–0x38). */
export const isReservedCommon = (offset: number) => offset >= 0x2f && offset <= 0x38;
/** Socket registers that only the chip changes (DS-W §4.2: Sn_SR, Sn_TX_FSR, Sn_TX_RD, Sn_RX_RSR, Sn_RX_WR). */
export const SOCKET_READ_ONLY: ReadonlySet<number> = new Set([0x03, 0x20, 0x21, 0x22, 0x23, 0x26, 0x27, 0x2a, 0x2b]);
/** Socket offsets the datasheet leaves reserved (0x14, 0x17–0x1D). */
export const isReservedSocket = (offset: number) => offset === 0x14 || (offset >= 0x17 && offset <= 0x1d);

/** Names for messages. */
export function commonName(offset: number): string {
  for (const [name, [at, width]] of Object.entries(COMMON)) if (offset >= at && offset < at + width) return width > 1 ? `${name}[${offset - at}]` : name;
  return `common 0x${offset.toString(16).padStart(4, '0')}`;
}

export function socketName(socket: number, offset: number): string {
  for (const [name, [at, width]] of Object.entries(SOCKET)) {
    const n = name.replace('Sn_', `S${socket}_`);
    if (offset >= at && offset < at + width) return width > 1 ? `${n}[${offset - at}]` : n;
  }
  return `S${socket} register 0x${offset.toString(16).padStart(4, '0')}`;
}
