/**
 * Every ENC28J60 driver tunable in one place, with its default and the reason for it.
 */
export interface Enc28j60Options {
  /**
   * Last byte of the RX ring; the ring starts at 0x0000 (errata #5). Must be odd (errata #14).
   * 0x19FF leaves 6.5 KB for reception (4+ full frames) and 1.5 KB for one TX frame + TSV (LNX-ENC).
   */
  rxEnd: number;
  /** Full duplex: MACON3.FULDPX + PHCON1.PDPXMD. The chip cannot negotiate (chips.md §1.10). */
  fullDuplex: boolean;
  /** PHLCON: LEDA link status, LEDB TX/RX activity, stretched pulses (LNX-ENC 0x3476). */
  phyLedConfig: number;
  /** MAMXFL: 1518 = 1514-byte frame + FCS; longer frames are dropped by the chip. */
  maxFrameLength: number;
  /** Frames waiting for the transmitter before transmit() drops ('tx-queue-full'). */
  txQueueLimit: number;
  /** Retransmissions after TXERIF (late collision, errata #13): 16 like LNX-ENC and EtherCard. */
  txMaxRetries: number;
  /**
   * A transmission that has not finished after this long is stuck (errata #12): reset the
   * transmitter and retransmit. Full duplex frames take ≤1.3 ms; half duplex backoff ≤ ~0.5 s.
   */
  txTimeoutMs: number;
  /** Extra slack added to the computed wire time before checking a transmission is done. */
  txCompletionSlackMs: number;
  /**
   * Safety-net poll for missed INT edges (zephyr PR#82529) and for a chip reset underneath, which
   * silently disables interrupts. One small batch per period when idle.
   */
  pollIntervalMs: number;
  /**
   * Reads of ESTAT (0.3 ms apart) waiting for CLKRDY before initialising: after a RESET pulse or
   * power-up the oscillator start-up timer holds the chip 300 µs (DS-ENC §2.2). A missing chip
   * (MISO stuck low) uses them all, then start() reports ENODEV.
   */
  clockReadyAttempts: number;
  /** After SRC wait this long; CLKRDY is set early (errata #2: ≥1 ms; LNX-ENC waits 2 ms). */
  resetDelayMs: number;
  /** Wait before reading MIRD or issuing the next MII write (MISTAT.BUSY lasts 10.24 µs). */
  miiDelayMs: number;
  /** After a HAL error, wait this long before re-initialising (doubles up to 1 s). */
  errorBackoffMs: number;
  /** Release ring space (write ERXRDPT) at least when this fraction of the ring is consumed. */
  rxReleaseFraction: number;
  /**
   * Frame bytes (FCS included) read speculatively after the 6-byte header: in the interrupt
   * service batch, and past the frame being finished when EPKTCNT says another waits. A frame
   * that fits is delivered from that batch alone, one bridge round trip sooner; a longer one
   * costs nothing extra (the bytes are the start of it, and the next read continues there). When
   * no packet turns out to be there, or the frame is shorter, the rest is read for nothing.
   * 128 covers ARP (64), TCP ACKs with options (≤ 82), ICMP echo with the default 56-byte payload
   * (102) and short DNS: what latency depends on. Each byte costs ~10 µs at 1 Mbaud, so 128 is
   * ≤ 1.3 ms of serial time per interrupt; a round trip saved is 1–16 ms.
   */
  rxReadAheadBytes: number;
}

export const ENC28J60_DEFAULTS: Enc28j60Options = {
  rxEnd: 0x19ff,
  fullDuplex: true,
  phyLedConfig: 0x3476,
  maxFrameLength: 1518,
  txQueueLimit: 64,
  txMaxRetries: 16,
  txTimeoutMs: 500,
  txCompletionSlackMs: 0.02,
  pollIntervalMs: 100,
  clockReadyAttempts: 10,
  resetDelayMs: 2,
  miiDelayMs: 0.015,
  errorBackoffMs: 10,
  rxReleaseFraction: 0.25,
  rxReadAheadBytes: 128,
};
