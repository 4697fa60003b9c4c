/**
 * Every tunable of the serial-bridge host, with its default and why (like lwIP's opt.h).
 */
export const BRIDGE_DEFAULTS = {
  /** The sketch's compiled-in rate: exact at 16 MHz with U2X, and safe on 16U2, FTDI and CH340. */
  baudRate: 1_000_000,
  /**
   * Watchdog on the oldest request, on top of the line time of its bytes both ways: long enough
   * for a default FTDI (16 ms latency timer) plus a board busy with the requests before it.
   */
  requestTimeoutMs: 300,
  /**
   * Go-back-N retransmission when acks stop advancing: a NAK normally triggers a resend first;
   * this catches a lost NAK. Longer than a window's line time (≈10 ms at 1 Mbaud) + USB latency.
   */
  retransmitMs: 150,
  /** Retransmissions without ack progress before the host resynchronises with HELLO. */
  retransmitLimit: 6,
  /** HELLO resend period while connecting/resynchronising. */
  helloRetryMs: 250,
  /**
   * After opening a port that resets the board (DTR), the host sends nothing until the sketch's
   * boot HELLO arrives or this long has passed: a bootloader listens first and reads the host's
   * bytes as its own commands (optiboot may erase a flash page, the Mega's stk500v2 never starts
   * the sketch while bytes keep coming). Optiboot starts the sketch 1.4 s after a reset (LED
   * flashes, then its 1 s watchdog), stk500v2 0.8 s after (both measured in simavr with Debian's
   * bootloaders, test/flash/bootloaders.test.ts). 0: HELLO at once, for a board that does not reset.
   */
  bootWaitMs: 2_500,
  /** Give up on a board that does not answer HELLO within this after opening (the boot wait included). */
  openTimeoutMs: 5_000,
  /** Reopen period after the port vanished. */
  reconnectMs: 500,
  /** Resubmissions of a retryable request whose reply was lost. */
  maxRetries: 3,
  /** Requests packed into the stream ahead of their replies (ids are u8; credits bound bytes). */
  maxInFlight: 64,
  /**
   * The fastest a board clocks SPI, bytes/s: every board the sketch is built for (boards/*.json)
   * is a 16 MHz AVR, whose SPI runs at most at F_CPU/2 = 8 MHz. A floor for SpiDevice.minWriteMs;
   * a faster board needs a higher value here (too low only costs a resent frame, `tx-preempted`).
   */
  spiBytesPerSecond: 1_000_000,
  /**
   * avr8js sends back-to-back bytes at ≈1.5 character times; real UARTs at 1.0. Timeouts assume
   * the slower so a simulated board is not declared dead.
   */
  lineTimeFactor: 2,
  /**
   * Idle fill (SET_FILL, docs/bridge-protocol.md §3.3): zeros the board sends after each burst of
   * frames. 0 (off) by default: the HAL cannot see which USB-serial chip is in between; the caller
   * who knows says `idleFill: idleFillFor(chip)`.
   */
  idleFill: 0,
  /**
   * An FTDI chip's latency timer (ms) the host sets when it opens the port (Linux, ftdi_sio's
   * sysfs file; ftdi-latency.ts): at its default 16 ms every short reply, and every credit report
   * under a stream, waits up to 16 ms in the chip. 1 is what most serial tools set. 0: leave it.
   */
  ftdiLatencyMs: 1,
} as const;

/**
 * Idle fill that makes a USB-serial chip forward a reply at once instead of on its timer: the
 * number of bytes after which it sends what it holds. By chip (boards/*.json `usbSerial.chip`) or
 * simulated link model (boards/sim/serial-link.ts).
 */
const IDLE_FILL_BY_USB_CHIP: ReadonlyMap<string, number> = new Map([
  // Arduino-usbserial firmware: sends when more than 96 bytes are buffered (BUFFER_NEARLY_FULL),
  // else every 4.096 ms (Timer0 overflow).
  ['atmega16u2', 97],
  ['atmega8u2', 97],
  ['16u2', 97],
  // FTDI AN232B-04: a full 64-byte packet (62 data bytes) goes at once, else on the latency timer
  // (16 ms by default).
  ['ft232rl', 62],
  ['ft232r', 62],
  ['ftdi', 62],
  ['ftdi-1ms', 62],
]);

/** The idle fill for a USB-serial chip or link model name; 0 (off) when unknown or unbuffered. */
export function idleFillFor(usbChipOrLinkModel: string | undefined): number {
  return IDLE_FILL_BY_USB_CHIP.get(usbChipOrLinkModel?.toLowerCase() ?? '') ?? 0;
}

/**
 * The USB-serial chip of each board the sketch is built for, by the name its HELLO gives
 * (boards/<name>.json `usbSerial.chip`; a test keeps the two in step). A Nano clone with a CH340
 * instead of the FT232RL gets the FTDI fill: 62 zeros cost it ≈ 0.6 ms of line after a reply.
 */
export const USB_CHIP_BY_BOARD: ReadonlyMap<string, string> = new Map([
  ['uno', 'atmega16u2'],
  ['mega2560', 'atmega16u2'],
  ['nano', 'ft232rl'],
]);

/** The idle fill for a board by the name its HELLO gives; 0 when unknown. */
export function idleFillForBoard(boardName: string): number {
  return idleFillFor(USB_CHIP_BY_BOARD.get(boardName));
}
