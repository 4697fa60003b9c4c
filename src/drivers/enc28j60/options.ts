/**
 * Every ENC28J60 driver tunable in one place, with its default and the reason for it.
 */
export interface Enc28j60Options {
  /**
   * Last byte of the RX ring; the ring starts at 0x0000 (errata #5). Must be odd (errata #14).
   * 0x13FF leaves 5 KB for reception (3 full frames) and 3 KB for two transmit buffers of 1.5 KB
   * (frame + control byte + TSV each). With `txBuffers: 1`, 0x19FF gives the ring 6.5 KB (4+ full
   * frames) and one transmit buffer.
   */
  rxEnd: number;
  /**
   * Transmit buffers after the ring. With two, a frame is written into one while the other is on
   * the wire, and over a slow link the next send follows the previous one without waiting for its
   * answer (see `txFollowMarginMs`), so the serial link never idles between frames: full-size
   * frames go out at the link's limit over the mock bridge model, and board→LAN TCP through the
   * simulated Uno at 1 Mbaud reaches 0.89 of the raw serial rate (0.82 with one buffer).
   */
  txBuffers: 1 | 2;
  /**
   * A send follows the previous one before its batch has returned only when its TXRST is certain
   * to come at least the previous frame's wire time plus this margin after that frame started:
   * because writing the new frame takes that long (the HAL's SpiDevice.minWriteMs floor), or
   * because the board waits out the rest first (SpiTransaction.delayUs, where the HAL has
   * transactionDelays). Otherwise the new batch's TXRST could cut the previous frame short (it
   * would be retransmitted, counted as 'tx-preempted').
   */
  txFollowMarginMs: number;
  /**
   * Send batches out at once, when each follows the previous one before its answer (see
   * `txFollowMarginMs`): two — the frame on the wire and the one written behind it into the other
   * buffer — where the HAL cannot delay a transaction on the board.
   */
  txSendsAhead: number;
  /**
   * The same where it can (SpiDevice.transactionDelays): each send's TXRST waits on the board for
   * its predecessor's wire time, so the frame two sends back is off the wire before its buffer is
   * written again and any number could follow; four keep a 4 ms turnaround busy with small frames.
   */
  txSendsAheadWithDelays: number;
  /**
   * In half duplex, no send follows another before its answer within this long of a frame of
   * half the MTU or more coming in (TxScheduler.receivedFrame): the board takes its receive runs
   * in the gaps between batches. A 64 KiB TCP echo through the simulated Uno at 1 Mbaud took
   * ≈ 8 % longer sending ahead regardless (1.43 s of virtual time against 1.32 s).
   */
  txSendAheadRxQuietMs: number;
  /**
   * Full duplex: MACON3.FULDPX + PHCON1.PDPXMD, with PAUSE frames honoured and sent (MACON1.RXPAUS,
   * TXPAUS) (DS-ENC §6.5, §6.6). Off by default: the chip cannot auto-negotiate, so a switch port
   * that auto-negotiates (nearly all do) falls back to half duplex by parallel detection
   * (DS-ENC §9.0), and a chip set to full duplex against it loses frames to collisions the port
   * sees and the chip ignores. Turn it on only where the switch port is forced to 10 Mbit/s full
   * duplex. Half duplex sets PHCON2.HDLDIS (errata #9), MACON4.DEFER and the half-duplex gaps.
   */
  fullDuplex: boolean;
  /** PHLCON: LEDA link status, LEDB TX/RX activity, stretched pulses (DS-ENC, PHLCON register). */
  phyLedConfig: number;
  /** MAMXFL: 1518 = 1514-byte frame + FCS; longer frames are dropped by the chip. */
  maxFrameLength: number;
  /**
   * Frames waiting for the transmitter before transmit() drops the new one ('tx-queue-full',
   * counted; drop-tail). Over the serial bridge a full-size frame takes ≈ 17–27 ms to reach the
   * chip, so 64 frames are ≈ 1–1.7 s of queue: a ping behind a TCP transfer waits that long, and it
   * is past TCP's 1 s minimum RTO (RFC 6298 §2.4). 8 (≈ 0.2 s, still several times the link's
   * bandwidth-delay product) bounds that wait, but TCP loses more to tail drops (1 MiB echo through
   * the simulated Uno on a VirtualClock: 36.5 s with 157 tail drops at 8, 27.2 s at 64). 64 favours
   * throughput; set it lower where latency behind bulk traffic matters more.
   */
  txQueueLimit: number;
  /**
   * Retransmissions after TXERIF (a false late collision in half duplex, errata #13). 16, as the
   * Linux and EtherCard drivers allow: a false collision is rare, so 16 in a row mean a real fault.
   */
  txMaxRetries: number;
  /**
   * A transmission that has not finished after this long is stuck (errata #12): reset the
   * transmitter and retransmit. Full duplex frames take ≤1.3 ms; half duplex backoff ≤ ~0.5 s.
   */
  txTimeoutMs: number;
  /** Extra slack added to the computed wire time before checking a transmission is done. */
  txCompletionSlackMs: number;
  /**
   * A completion check that finds the frame still going looks again after this long at least (then
   * after as long as it has taken so far): in half duplex a frame waits for one coming in (up to
   * 1.2 ms) and backs off after a collision (slots of 51.2 µs).
   */
  txRecheckMs: number;
  /**
   * With the receive program armed, the standalone completion check of a transmission waits this
   * much longer than its wire time: the EIR every program run reads settles it first whenever a
   * frame comes in meanwhile (a ping's or a TCP peer's answer), and the check's round trip would
   * sit in front of that frame's answer on the board's line (ping through the simulated Uno at
   * 1 Mbaud: 0.22 ms of check answer fewer per exchange). Nothing waits for it: a send due
   * meanwhile reads EIR itself, and a stalled transmitter (errata #12) takes `txTimeoutMs`.
   */
  txRunCheckDelayMs: number;
  /**
   * Safety-net poll for a missed INT edge (the line is edge-triggered: a flag raised while another
   * holds INT low gives no new edge) and for a chip reset underneath, which silently disables
   * interrupts; PKTIF, behind INT for received packets, is unreliable too (errata #6). One small
   * batch per period when idle.
   */
  pollIntervalMs: number;
  /**
   * With the receive program armed and the INT line seen to deliver frames, the poll's period
   * doubles after each quiet period up to this (safety-net.ts); a frame either way, or one a poll
   * finds, brings it back to `pollIntervalMs`. Over the serial bridge a poll is a round trip
   * through the board: at 100 ms they were most of an idle host's CPU. The cost: a chip reset, or
   * a frame whose edge was missed, on an idle link is noticed up to this late.
   */
  idlePollIntervalMs: number;
  /**
   * Reads of ESTAT (0.3 ms apart) waiting for CLKRDY before initialising: after a RESET pulse or
   * power-up the oscillator start-up timer holds the chip 300 µs (DS-ENC §2.2). A missing chip
   * (MISO stuck low) uses them all, then start() reports ENODEV.
   */
  clockReadyAttempts: number;
  /** After SRC wait this long; CLKRDY is set too early (errata #2: ≥ 1 ms); 2 ms leaves a margin. */
  resetDelayMs: number;
  /** Wait before reading MIRD or issuing the next MII write (MISTAT.BUSY lasts 10.24 µs, DS-ENC §3.3). */
  miiDelayMs: number;
  /** After a HAL error, wait this long before re-initialising (doubled after each failure). */
  errorBackoffMs: number;
  /**
   * The cap on that doubling: a board that is gone is retried once a second, soon enough that
   * the link comes back without a person noticing the wait, seldom enough not to load the HAL.
   */
  errorBackoffMaxMs: number;
  /** Release ring space (write ERXRDPT) at least when this fraction of the ring is consumed. */
  rxReleaseFraction: number;
  /**
   * Frame bytes (FCS included) read speculatively after the 6-byte header: in the interrupt
   * service batch, and past the frame being finished when EPKTCNT says another waits. A frame
   * that fits is delivered from that batch alone, one bridge round trip sooner; a longer one
   * costs nothing extra (the bytes are the start of it, and the next read continues there). When
   * no packet turns out to be there, or the frame is shorter, the rest is read for nothing.
   * 104 covers ARP (64 with FCS), TCP ACKs with options (≤ 82) and an ICMP echo with the default
   * 56-byte payload (102): the frames latency depends on. It is kept that small because an unused
   * byte is not free: the Uno sketch returns ≈ 53 KiB/s (≈ 19 µs a byte), and on the Uno's 16U2,
   * which flushes every 4.096 ms, a service reply 30 bytes longer misses its flush and costs a
   * whole period (at 128: ping p50 16.0 ms against 11.9 ms at 104, TCP board→LAN 8 % slower).
   */
  rxReadAheadBytes: number;
  /**
   * Receive with a program on the board when the HAL can run one (SpiDevice.arm; the bridge
   * sketch from protocol version 2): the board itself reads each frame when INT falls and streams
   * it back, so a received frame costs no round trip (docs/bridge-protocol.md §3.2). Off, or on a
   * HAL without programs, the driver services interrupts with batches as described above.
   */
  rxProgram: boolean;
}

export const ENC28J60_DEFAULTS: Enc28j60Options = {
  rxEnd: 0x13ff,
  txBuffers: 2,
  txFollowMarginMs: 0.1,
  txSendsAhead: 2,
  txSendsAheadWithDelays: 4,
  txSendAheadRxQuietMs: 50,
  fullDuplex: false,
  phyLedConfig: 0x3476,
  maxFrameLength: 1518,
  txQueueLimit: 64,
  txMaxRetries: 16,
  txTimeoutMs: 500,
  txCompletionSlackMs: 0.02,
  txRecheckMs: 0.5,
  txRunCheckDelayMs: 10,
  pollIntervalMs: 100,
  idlePollIntervalMs: 1_000,
  clockReadyAttempts: 10,
  resetDelayMs: 2,
  miiDelayMs: 0.015,
  errorBackoffMs: 10,
  errorBackoffMaxMs: 1000,
  rxReleaseFraction: 0.25,
  rxReadAheadBytes: 104,
  rxProgram: true,
};
