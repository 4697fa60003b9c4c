/**
 * Every W5500 driver tunable in one place, with its default and the reason for it.
 */
export interface W5500Options {
  /**
   * Receive everything on the wire: Sn_MR without MFEN (and without blocking IPv6), so the stack
   * sees frames for other stations too (a capture). Off: MFEN passes only frames to our MAC and
   * broadcasts, and MIP6B drops IPv6 in the chip, so neither costs serial-link bytes.
   */
  promiscuous: boolean;
  /**
   * The chip's INTn reaches the board. Off (a module or shield without the wire, or its solder
   * jumper open): the driver looks at the chip every `noInterruptPollMs` instead.
   */
  interruptLine: boolean;
  /**
   * Safety-net poll with an interrupt line: missed INTn edges are a known W5500 failure
   * (esp-idf: "the driver goes silent"), and a chip reset underneath says nothing. One small
   * batch per period when idle.
   */
  pollIntervalMs: number;
  /**
   * With the interrupt line and the receive program, once INTn has delivered frames, the poll's
   * period doubles after each quiet period up to this (src/drivers/safety-net.ts); a frame either
   * way, or one a poll finds, brings it back to `pollIntervalMs`. Over the serial bridge a poll
   * is a round trip through the board. The cost: a chip reset, or a frame whose edge was missed,
   * on an idle link is noticed up to this late.
   */
  idlePollIntervalMs: number;
  /**
   * Poll period without an interrupt line. Each poll is one small batch (≈ 40 bytes each way over
   * the serial bridge): 10 ms costs ≈ 4 kB/s of a 100 kB/s link and adds 5 ms of receive latency
   * on average; a shorter period answers sooner and costs proportionally more.
   */
  noInterruptPollMs: number;
  /**
   * Leave the receive program (rx-program.ts) on a board that runs programs with extensions
   * (SpiDevice.programExtensions): received frames then cost no round trip. Off: receive by batches.
   */
  receiveProgram: boolean;
  /** Frames waiting to be sent before transmit() drops the new one ('tx-queue-full'): as the ENC28J60 driver. */
  txQueueLimit: number;
  /**
   * A frame not sent (Sn_TX_RD not past it) this long after its SEND is stuck: the link went away
   * under it, which the chip never recovers from by itself (esp-idf). The socket is then closed
   * and opened again. A frame takes ≤ 1.3 ms on the wire at 10 Mbit/s.
   */
  txTimeoutMs: number;
  /**
   * Slack added to a frame's wire time before the next SEND may reach the chip (a SEND while the
   * previous frame is still on the wire is undefined: every driver waits for it).
   */
  txFollowMarginMs: number;
  /**
   * With nothing else reading Sn_TX_RD, how long after a frame's wire time a check batch settles
   * it (counts it sent). Received traffic and the next send usually settle it first.
   */
  txCheckDelayMs: number;
  /** Reads of VERSIONR (`readyDelayMs` apart) waiting for a chip that is starting (PLL lock ≤ 1 ms after RSTn). */
  readyAttempts: number;
  readyDelayMs: number;
  /** Reads of MR (`resetPollMs` apart) waiting for MR.RST to clear: ARD-ETH polls 20 × 1 ms, LNX-WIZ waits 5 ms. */
  resetAttempts: number;
  resetPollMs: number;
  /** Reads of Sn_CR/Sn_SR (`commandPollMs` apart) waiting for OPEN or CLOSE to take effect: 100 ms in all (LNX-WIZ, Zephyr). */
  commandAttempts: number;
  commandPollMs: number;
  /** Answers in a row showing Sn_CR still not accepted before the command counts as stuck (Arduino Ethernet #82): then a chip reset. */
  stuckCommandReads: number;
  /** Reads in a row with a bad length header before a flush is not enough and the socket is opened again (zephyr PR#46701). */
  badHeaderReopenAfter: number;
  /** After a HAL error, wait this long before re-initialising (doubles up to 1 s). */
  errorBackoffMs: number;
}

export const W5500_DEFAULTS: W5500Options = {
  promiscuous: false,
  interruptLine: true,
  pollIntervalMs: 100,
  idlePollIntervalMs: 1_000,
  noInterruptPollMs: 10,
  receiveProgram: true,
  txQueueLimit: 64,
  txTimeoutMs: 100,
  txFollowMarginMs: 0.01,
  txCheckDelayMs: 10,
  readyAttempts: 10,
  readyDelayMs: 0.5,
  resetAttempts: 20,
  resetPollMs: 1,
  commandAttempts: 100,
  commandPollMs: 1,
  stuckCommandReads: 2,
  badHeaderReopenAfter: 2,
  errorBackoffMs: 10,
};
