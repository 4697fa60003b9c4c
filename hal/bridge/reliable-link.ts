/**
 * The host → board half of the serial bridge (docs/bridge-protocol.md §4, §5): the command stream,
 * cut into ≤64-byte DATA frames numbered mod 256, written as far as the board's byte credit allows
 * and kept until the board's `ack` passes them; a NAK, or acks that stop advancing, send them again
 * from the oldest unacknowledged (go-back-N). So the board executes the stream exactly once, in
 * order, and its receive ring never overflows.
 *
 * The link knows bytes and frames, not requests or HELLOs: the session (session.ts) starts it at
 * the origin a HELLO answer gives, stops it while it resynchronises and hands it every board
 * frame's ack and credit report.
 */
import type { Clock } from '../../src/time/clock.js';
import { RearmableTimer } from '../../src/time/timer.js';
import { BoardFrame, MAX_PAYLOAD, encodeHostData, type BoardFrameView } from './protocol.js';

/** Go-back-N with an 8-bit seq: fewer than half the sequence space in flight. */
export const MAX_FRAMES_IN_FLIGHT = 127;

export interface LinkStats {
  framesSent: number;
  bytesSent: number;
  retransmittedFrames: number;
  naks: number;
  /** Most bytes ever outstanding against the board's window (≤ window). */
  peakCreditUsed: number;
}

/** What the link reads of a board frame: every frame reports `ack` and `consumed`; a NAK asks for a resend. */
export type LinkReport = Pick<BoardFrameView, 'type' | 'ack' | 'consumed'>;

export interface ReliableLinkOptions {
  readonly clock: Clock;
  /** Puts wire bytes on the line to the board. */
  readonly write: (wire: Uint8Array) => void;
  /** Resend from the oldest unacknowledged frame when acks have not advanced for this long. */
  readonly retransmitMs: number;
  /** Resends in a row without ack progress before the link gives up (`onStalled`). */
  readonly retransmitLimit: number;
  /** Go-back-N gave up: the board takes none of the frames (the session resynchronises). */
  readonly onStalled: () => void;
  /**
   * Time the board is known to spend executing what it was sent and has not acknowledged, beyond
   * line and SPI time (CHIP_RESET, transaction DELAYs): it acknowledges a frame only after
   * executing it, so that long without an ack is no reason to resend.
   */
  readonly boardBusyMs?: () => number;
  /** Counters to add to (a session shares its own); default: fresh ones in `stats`. */
  readonly stats?: LinkStats;
}

interface QueuedFrame {
  /** Frame number: counts up without wrapping; the wire carries it mod 256. */
  readonly number: number;
  readonly wire: Uint8Array;
}

export class ReliableLink {
  readonly stats: LinkStats;
  /** Started and not stopped: frames may go on the line. */
  private sending = false;
  /** Frames from `acked` on, not yet acknowledged; those from `cursor` on are not (re)sent yet. */
  private frames: QueuedFrame[] = [];
  private cursor = 0;
  /** The first frame the board has not acknowledged. */
  private acked = 0;
  /** The frame the next appended byte goes into. */
  private next = 0;
  /** One past the highest frame ever written. */
  private transmitted = 0;
  /** The frame being filled: its first `tailLength` bytes (encodeHostData copies them out). */
  private readonly tail = new Uint8Array(MAX_PAYLOAD);
  private tailLength = 0;
  private windowBytes = 0;
  private sentTotal = 0;
  private consumedTotal = 0;
  private lastConsumed16 = 0;
  /** Re-armed on every ack that advances: the pending callback sleeps on rather than rescheduling. */
  private readonly retransmitTimer: RearmableTimer;
  private stalledRetransmits = 0;
  /** The ack of the NAK last answered: the board sends one NAK per gap, a copy asks for nothing new. */
  private lastNakAck = -1;
  /** hold() calls not yet released: frames due go out together at the last release(). */
  private holds = 0;
  private held: Uint8Array[] = [];

  constructor(private readonly options: ReliableLinkOptions) {
    this.stats = options.stats ?? { framesSent: 0, bytesSent: 0, retransmittedFrames: 0, naks: 0, peakCreditUsed: 0 };
    this.retransmitTimer = new RearmableTimer(options.clock, () => this.onRetransmitTimeout());
  }

  /** The first frame the board has not acknowledged: it received every frame before it. */
  get acknowledged(): number {
    return this.acked;
  }

  /** One past the highest frame written: the board may have received every frame before it. */
  get transmittedFrames(): number {
    return this.transmitted;
  }

  /** The frame the next appended byte goes into. */
  get nextFrame(): number {
    return this.next;
  }

  /** The board's receive window (bytes it can buffer), from its HELLO, and how much of it is in use. */
  get credit(): { readonly window: number; readonly used: number } {
    return { window: this.windowBytes, used: this.sentTotal - this.consumedTotal };
  }

  /**
   * Begin a stream at a HELLO answer's report (§2): the board expects frame `ack` next, has
   * consumed `consumed` bytes (mod 2^16, the credit origin) and has `window` bytes of ring free.
   * Frames of an earlier stream are dropped.
   */
  start(ack: number, consumed: number, window: number): void {
    this.windowBytes = window;
    this.sentTotal = 0;
    this.consumedTotal = 0;
    this.lastConsumed16 = consumed;
    this.frames = [];
    this.tailLength = 0;
    this.cursor = 0;
    this.acked = this.next = this.transmitted = ack;
    this.stalledRetransmits = 0;
    this.lastNakAck = -1;
    this.held = [];
    this.sending = true;
  }

  /** Write nothing more until the next start(); acks and credit reports still count. */
  stop(): void {
    this.sending = false;
    this.held = [];
    this.retransmitTimer.stop();
  }

  /** Drop every frame not yet acknowledged and the one being filled: what they carried has failed. */
  discard(): void {
    this.held = [];
    this.frames = [];
    this.tailLength = 0;
    this.cursor = 0;
    this.acked = this.next = this.transmitted;
  }

  /** Whether the board may still report `ack` (mod 256) of this stream: from the last ack to the last frame written. */
  couldAck(ack: number): boolean {
    return ((ack - this.acked) & 0xff) <= this.transmitted - this.acked;
  }

  /**
   * Keep what is due for the line until the matching release(): a burst of board frames (the acks
   * of one read from the port) and the requests they let the host issue then go out in one write
   * instead of one each, which is most of what a write costs.
   */
  hold(): void {
    this.holds++;
  }

  release(): void {
    if (this.holds === 0 || --this.holds > 0 || this.held.length === 0) return;
    const out = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
    this.held = [];
    this.options.write(out);
  }

  /** Add `bytes` to the stream; every full frame is cut at once. */
  append(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(MAX_PAYLOAD - this.tailLength, bytes.length - at);
      this.tail.set(bytes.subarray(at, at + n), this.tailLength);
      this.tailLength += n;
      at += n;
      if (this.tailLength === MAX_PAYLOAD) this.cutFrame();
    }
  }

  /** Cut the frame being filled and write what credit allows. */
  flush(): void {
    if (this.tailLength > 0) this.cutFrame();
    this.pump();
  }

  /** A board frame arrived: take its credit report and ack, and resend on a NAK. */
  receive(report: LinkReport): void {
    this.consumedTotal += (report.consumed - this.lastConsumed16) & 0xffff;
    this.lastConsumed16 = report.consumed;
    const advance = (report.ack - this.acked) & 0xff;
    if (advance > 0 && this.couldAck(report.ack)) {
      this.acked += advance;
      this.frames.splice(0, advance);
      this.cursor = Math.max(0, this.cursor - advance);
      this.stalledRetransmits = 0;
      this.lastNakAck = -1;
      this.armRetransmit();
    }
    this.pump();
    if (report.type !== BoardFrame.NAK) return;
    this.stats.naks++;
    if (this.sending && (report.ack !== this.lastNakAck || this.cursor > 0)) {
      this.lastNakAck = report.ack;
      this.cursor = 0;
      this.pump();
    }
  }

  private cutFrame(): void {
    const number = this.next++;
    this.frames.push({ number, wire: encodeHostData(number & 0xff, this.tail.subarray(0, this.tailLength)) });
    this.tailLength = 0;
  }

  /** Write frames from the cursor as far as credit and the sequence space allow. */
  private pump(): void {
    if (!this.sending) return;
    const out: Uint8Array[] = [];
    let bytes = 0;
    while (this.cursor < this.frames.length && this.cursor < MAX_FRAMES_IN_FLIGHT) {
      const frame = this.frames[this.cursor]!;
      const used = this.sentTotal - this.consumedTotal;
      if (used + frame.wire.length > this.windowBytes) break;
      this.sentTotal += frame.wire.length;
      this.stats.peakCreditUsed = Math.max(this.stats.peakCreditUsed, this.sentTotal - this.consumedTotal);
      if (frame.number < this.transmitted) this.stats.retransmittedFrames++;
      else this.transmitted = frame.number + 1;
      out.push(frame.wire);
      bytes += frame.wire.length;
      this.cursor++;
    }
    if (out.length === 0) return;
    this.stats.framesSent += out.length;
    this.stats.bytesSent += bytes;
    if (this.holds > 0) this.held.push(...out);
    else this.options.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    if (!this.retransmitTimer.armed) this.armRetransmit();
  }

  private armRetransmit(): void {
    if (this.frames.length === 0 || this.transmitted <= this.acked) return this.retransmitTimer.cancel();
    const busyMs = this.options.boardBusyMs?.() ?? 0;
    this.retransmitTimer.arm(this.options.retransmitMs + busyMs);
  }

  private onRetransmitTimeout(): void {
    if (!this.sending || this.frames.length === 0) return;
    if (++this.stalledRetransmits > this.options.retransmitLimit) return this.options.onStalled();
    this.cursor = 0;
    this.pump();
    this.armRetransmit();
  }
}
