import type { SpiDevice } from '../hal.js';
import type { TraceHook } from '../../stats/trace.js';
import type { Clock } from '../../time/clock.js';
import type { NicStats } from '../../link/nic.js';
import { countDrop } from '../../stats/counters.js';
import { ETHERNET_HEADER_LENGTH } from '../../wire/ethernet.js';
import { frameWireTimeMs } from '../../wire/wire-time.js';
import type { CommandBatch } from './batch.js';
import type { Enc28j60Options } from './options.js';
import * as R from './registers.js';

/**
 * The ENC28J60 transmit side: the queue, the transmit buffers after the receive ring, and when
 * the next frame may go.
 *
 * A send is one batch: the frame into a transmit buffer, a TXRST pulse (errata #12), ETXST/ETXND,
 * TXRTS (DS-ENC §7.1). Its outcome (EIR.TXIF, TXERIF) is read by whatever batch runs after its
 * wire time: an interrupt service or receive-program run, or a small completion check.
 *
 * A transmission is settled by the chip's status, never by the clock alone: in half duplex (the
 * default) the MAC defers to traffic coming in and backs off after collisions, and in full duplex a
 * PAUSE frame holds it, so a frame may take any time to leave. Once a send's answer is back, the
 * next send goes only once TXIF or TXERIF has been read for it (in half duplex; in full duplex,
 * once its wire time is over); its wire time only says when to look first. With two buffers a send
 * may follow the previous one before that one's answer is back when its TXRST is certain to come
 * after the previous frame is off the wire — writing a frame into the other buffer takes longer
 * than the previous frame's wire time, plus in half duplex one full-size frame coming in that it
 * defers to — so the serial line never idles for the answer's way back. That send reads EIR just
 * before its TXRST: a frame found cut short there (a PAUSE held it, or collisions kept it back)
 * goes again and ends the shortcut for good, and every send then waits for the last one's status.
 */

/** Ethernet's IP MTU (RFC 894): the largest payload of one frame. */
export const ETHERNET_MTU = 1500;
/** The largest frame the chip is given: the Ethernet header and the largest payload, no FCS. */
export const MAX_FRAME_BYTES = ETHERNET_HEADER_LENGTH + ETHERNET_MTU;
/** One transmit buffer: control byte, the largest frame, and the status vector written after it. */
const TX_BUFFER_BYTES = R.TX_CONTROL_BYTES + MAX_FRAME_BYTES + R.TSV_BYTES;
/**
 * Distance between the two transmit buffers: the next multiple of 256 above one buffer, so both
 * start at the same ETXSTL/EWRPTL and a switch of buffer writes ETXSTH alone.
 */
const TX_BUFFER_STRIDE = Math.ceil(TX_BUFFER_BYTES / 256) * 256;

/** Throws when the buffer after a ring ending at `rxEnd` cannot hold `txBuffers` full frames. */
export function checkTxLayout(rxEnd: number, txBuffers: number): void {
  if (txBuffers !== 1 && txBuffers !== 2) throw new RangeError('txBuffers must be 1 or 2');
  if (R.BUFFER_BYTES - (rxEnd + 1) < (txBuffers - 1) * TX_BUFFER_STRIDE + TX_BUFFER_BYTES) {
    throw new RangeError(`rxEnd leaves no room for ${txBuffers} full TX frame${txBuffers > 1 ? 's' : ''} + TSV`);
  }
}

/** A batch's answer, given to whatever planned part of it. */
export type ResultHandler = (result: Uint8Array) => void;

/** What `plan` put into a batch: a send, or a completion check (an EIR read only). */
export interface TxPlan {
  kind: 'send' | 'check';
  handle: ResultHandler;
}

interface TxItem {
  frame: Uint8Array;
  retries: number;
}

interface TxInFlight {
  item: TxItem;
  /** Sequence number of the batch that set TXRTS. */
  seq: number;
  /** When that batch had certainly run on the chip; undefined until it returned. */
  startedBy?: number;
  /** When the frame should be off the wire (wire time + slack after startedBy). */
  doneBy?: number;
  resolved: boolean;
}

/** How EIR was read for a transmission; `preempted`: just before the TXRST of the next send. */
type Observation = 'observed' | 'checked' | 'preempted';

/** What the batch being built and the driver's state say, for `plan`. */
export interface TxPlanContext {
  linkUp: boolean;
  /** The receive program is armed: completion checks wait longer (txRunCheckDelayMs). */
  programArmed: boolean;
  /** The batch reads EIR already (a service or poll): no completion check is needed. */
  batchReadsEir: boolean;
  /** Writes that must precede a send's TXRTS; a send calls it where they cost least. */
  beforeFrame: () => void;
}

export interface TxSchedulerConfig {
  clock: Clock;
  spi: SpiDevice;
  options: Enc28j60Options;
  counters: NicStats;
  /** Count a recovery by name (the driver's events). */
  count(event: string): void;
  /** A transmission's deadline or outcome changed: the driver re-arms its wake-up. */
  rearm(): void;
  /** Where the driver, the chip buffer and the serial link report what they did with a frame. */
  trace: TraceHook;
  /** The HAL's name, for those reports. */
  halName: string;
}

export class TxScheduler {
  /** First byte after the receive ring: the first transmit buffer. */
  readonly txStart: number;
  private readonly clock: Clock;
  private readonly spi: SpiDevice;
  private readonly options: Enc28j60Options;
  private readonly counters: NicStats;
  private readonly config: TxSchedulerConfig;

  private readonly queue: TxItem[] = [];
  /** The frame sent last, until it is known to be done. */
  private inFlight: TxInFlight | undefined;
  /** Frames sent whose outcome is not known yet (at most two: the one on the wire, the next). */
  private readonly unresolved: TxInFlight[] = [];
  /** The transmit buffer written last, and whether its frame is known to be off the wire. */
  private lastBuffer = 0;
  private lastSent = false;
  /** ETXSTH as last written (initialisation points ETXST at the first buffer). */
  private startHigh = -1;
  /** Transmit batches out (sends, completion checks). */
  private batchesOut = 0;
  /** Half duplex: a frame may wait for traffic coming in, and back off after collisions. */
  private readonly halfDuplex: boolean;
  /**
   * A send may follow the previous one before its answer is back (see the class comment); off for
   * good once a frame was found still going when the next send's TXRST came.
   */
  private sendAhead = true;
  /** When a frame of at least half the MTU last came in (see `receivedFrame`). */
  private bulkReceivedAt = -Infinity;
  /** A frame written into the buffer not in use, to be started by the next send (settling by status). */
  private staged: { item: TxItem; buffer: number } | undefined;
  /** Of those, completion checks. */
  private checksOut = 0;

  constructor(config: TxSchedulerConfig) {
    this.config = config;
    this.clock = config.clock;
    this.spi = config.spi;
    this.options = config.options;
    this.counters = config.counters;
    checkTxLayout(this.options.rxEnd, this.options.txBuffers);
    this.txStart = this.options.rxEnd + 1;
    this.halfDuplex = !this.options.fullDuplex;
  }

  /**
   * Once a send's answer is back, the next waits for TXIF/TXERIF of the last (see the class
   * comment): always in half duplex, and in full duplex once a frame was found cut short. Each
   * send then also stages the next frame in the other buffer.
   */
  private get settleByStatus(): boolean {
    return this.halfDuplex || !this.sendAhead;
  }

  /** Frames queued (or staged in a transmit buffer), and handed to the chip but not yet resolved. */
  get pending(): number {
    return this.queue.length + (this.staged ? 1 : 0) + this.unresolved.filter((tx) => !tx.resolved).length;
  }

  /**
   * A frame came in. The board runs its receive program only between two batches, never while
   * host commands wait: sends queued back to back leave it no gap, and frames wait in the ring
   * (whose three full-size frames are TCP's window). So in half duplex, while data comes in,
   * each send waits for the last one's answer, which leaves the board that gap.
   */
  receivedFrame(length: number): void {
    if (length >= ETHERNET_MTU / 2) this.bulkReceivedAt = this.clock.now();
  }

  /** Queue a frame; false (and a counted drop) when the queue is full. */
  enqueue(frame: Uint8Array): boolean {
    if (this.queue.length >= this.options.txQueueLimit) {
      countDrop(this.counters.drops, 'tx-queue-full');
      return false;
    }
    this.queue.push({ frame, retries: 0 });
    this.config.trace.emit?.('driver', 'out', `queued for the chip (${this.queue.length - 1} frame${this.queue.length === 2 ? '' : 's'} ahead, ${this.unresolved.length} on the way)`, frame);
    return true;
  }

  /** Drop every queued frame, counted under `reason`. */
  dropQueued(reason: string): void {
    this.unstage();
    for (const _item of this.queue.splice(0)) countDrop(this.counters.drops, reason);
  }

  /** Forget the frames sent (the driver stops). */
  forgetSent(): void {
    this.unresolved.length = 0;
    this.inFlight = undefined;
    this.unstage();
  }

  /** A frame waits to be sent: queued, or staged in a transmit buffer. */
  private get waiting(): boolean {
    return this.queue.length > 0 || this.staged !== undefined;
  }

  /** A staged frame back to the head of the queue (its buffer will be written again). */
  private unstage(): void {
    if (this.staged) this.queue.unshift(this.staged.item);
    this.staged = undefined;
  }

  /** Frames the chip may not have sent (re-initialisation): back to the head of the queue, in order. */
  requeueInFlight(): void {
    for (const tx of this.unresolved) tx.resolved = true;
    this.unstage();
    this.queue.unshift(...this.unresolved.splice(0).map((tx) => tx.item));
    this.inFlight = undefined;
  }

  /** Initialisation pointed ETXST at `txStart`, the first buffer. */
  chipConfigured(): void {
    this.startHigh = this.txStart >> 8;
  }

  /** A batch holding `plan` is on its way / has come back. */
  dispatched(plan: TxPlan): void {
    this.batchesOut++;
    if (plan.kind === 'check') this.checksOut++;
  }

  settled(plan: TxPlan): void {
    this.batchesOut--;
    if (plan.kind === 'check') this.checksOut--;
  }

  /**
   * When the driver should look again: at the end of the last frame's wire time when a send waits
   * for it (it can go then), else when its completion check is due. Undefined while a transmit
   * batch is out (its answer kicks the driver) or nothing is in flight.
   */
  wakeTime(programArmed: boolean): number | undefined {
    if (this.batchesOut > 0) return undefined;
    const tx = this.inFlight;
    if (tx?.doneBy === undefined || tx.resolved) return undefined;
    return this.waiting ? tx.doneBy : this.checkAt(tx, programArmed);
  }

  /**
   * A reader of EIR built into a batch with sequence number `seq`: the transmission in flight when
   * it was built, if an earlier batch started it, is settled by what EIR says.
   */
  observer(seq: number): (eir: number) => void {
    const atBuild = this.inFlight;
    return (eir) => {
      if (atBuild && atBuild.seq < seq) this.resolve(atBuild, eir, 'observed');
    };
  }

  /**
   * EIR from a receive-program run. A run answered after the latest send's answer ran after it on
   * the board: its EIR tells how that transmission went, when it has finished (TXIF or TXERIF;
   * else it is still going).
   */
  observeRun(eir: number): void {
    const tx = this.inFlight;
    if (tx && !tx.resolved && tx.startedBy !== undefined) this.resolve(tx, eir, 'observed');
  }

  /**
   * Transmit work for `batch` (sequence number `seq`), if any is due: a send, or a completion
   * check when nothing else in the batch reads EIR.
   */
  plan(batch: CommandBatch, seq: number, context: TxPlanContext): TxPlan | undefined {
    const { linkUp, beforeFrame } = context;
    const now = this.clock.now();
    const previous = this.inFlight;
    if (this.batchesOut > 0) {
      if (!this.sendAhead) return undefined; // the send waits for the answer that settles the last one
      if (this.halfDuplex && now - this.bulkReceivedAt < this.options.txSendAheadRxQuietMs) return undefined;
      // Only a completion check is out (its answer can sit behind a long run or read): in full
      // duplex a frame to send need not wait for it once the previous one's wire time is over —
      // the send reads EIR before its TXRST anyway.
      if (!this.halfDuplex && this.checksOut === 1 && this.batchesOut === 1 && previous?.doneBy !== undefined && now >= previous.doneBy && this.queue.length > 0 && linkUp) {
        return this.planSend(batch, seq, previous, beforeFrame);
      }
      // The previous send's batch is still out. With a second buffer the next frame can follow it
      // at once, if writing that frame to the chip takes longer than the previous one's time on
      // the wire: by the time this batch resets the transmitter, the previous frame is out
      // (options.txSendsAhead).
      const maxSendsOut = this.spi.transactionDelays ? this.options.txSendsAheadWithDelays : this.options.txSendsAhead;
      if (!previous || previous.doneBy !== undefined || this.batchesOut >= maxSendsOut) return undefined;
      const delayUs = this.followDelayUs(previous, linkUp);
      if (delayUs === undefined) return undefined;
      return this.planSend(batch, seq, previous, beforeFrame, delayUs);
    }
    const due = !previous || now >= previous.doneBy!;
    if (this.waiting && linkUp && (this.settleByStatus ? !previous : due)) return this.planSend(batch, seq, previous, beforeFrame);
    // With a frame waiting behind it, the check goes as soon as the wire time is over.
    const checkDue = previous && (this.settleByStatus && this.waiting ? previous.doneBy! : this.checkAt(previous, context.programArmed));
    if (previous && due && !context.batchReadsEir && now >= checkDue!) {
      const eirAt = batch.read(R.EIR);
      return { kind: 'check', handle: (r) => this.resolve(previous, r[eirAt]!, 'checked') };
    }
    return undefined;
  }

  /** When a standalone completion check of `tx` is due (later with program runs: see txRunCheckDelayMs). */
  private checkAt(tx: TxInFlight, programArmed: boolean): number {
    return tx.doneBy! + (programArmed ? this.options.txRunCheckDelayMs : 0);
  }

  /**
   * May the next queued frame be sent behind `previous` before its batch is back? Only if its
   * TXRST certainly comes after `previous` is off the wire: writing the new frame takes that long
   * (the HAL's minWriteMs floor), or the board waits out the rest before the TXRST
   * (SpiTransaction.delayUs). The microseconds to wait (0: none), or undefined: it may not.
   */
  private followDelayUs(previous: TxInFlight, linkUp: boolean): number | undefined {
    // A staged frame was written behind the previous one's TXRTS, by the batch that sent it; any
    // other is written ahead of this batch's TXRST. Either write lies between the two.
    const next = this.staged?.item ?? this.queue[0];
    if (this.options.txBuffers < 2 || !next || !linkUp) return undefined;
    // In half duplex the previous frame may first defer to one coming in (IEEE 802.3
    // §4.2.3.2.1): at most a full-size frame's time.
    const deferMs = this.halfDuplex ? frameWireTimeMs(MAX_FRAME_BYTES) : 0;
    const neededMs = frameWireTimeMs(previous.item.frame.length) + deferMs + this.options.txFollowMarginMs;
    const writeMs = this.spi.minWriteMs?.(next.frame.length) ?? 0;
    if (writeMs >= neededMs) return 0;
    if (!this.spi.transactionDelays) return undefined;
    // In half duplex the allowance makes the wait long behind a small frame (≈ 1.3 ms behind a
    // TCP ACK), and the board takes no other work while it waits: there, the answer is worth
    // waiting for instead.
    if (this.halfDuplex && neededMs - writeMs > writeMs) return undefined;
    return Math.ceil((neededMs - writeMs) * 1000);
  }

  /**
   * DS-ENC §7.1 with errata #12: TXRST pulse, control byte + frame at ETXST, ETXND, clear
   * TXIF/TXERIF (clearing TXRST may set TXERIF), TXRTS. If the previous frame is not yet known to
   * be done, EIR is read just before the TXRST: by then (its wire time has passed) TXIF says how
   * it went, and "not done" means the reset cut it short. The frame is written after the
   * registers, just before TXRTS — unless, with two buffers, the previous frame may still be on
   * the wire: then it goes into the other buffer first, so the previous frame has the whole write
   * to finish in. `beforeFrame` goes ahead of the frame's bytes either way.
   */
  private planSend(batch: CommandBatch, seq: number, previous: TxInFlight | undefined, beforeFrame: () => void, delayUs = 0): TxPlan {
    // A frame staged by the last send is in the other buffer already: only the registers go now.
    const staged = this.staged;
    this.staged = undefined;
    const item = staged?.item ?? this.queue.shift()!;
    // With two buffers: the one used last again if its frame is known to have gone (ETXST stays),
    // else the other — the last one may be on the wire, or stuck there (errata #12) until this
    // batch's TXRST; the one before it was released by the previous send's TXRST.
    const reuse = this.unresolved.length === 0 && this.lastSent;
    const buffer = staged?.buffer ?? (this.options.txBuffers === 2 ? (reuse ? this.lastBuffer : 1 - this.lastBuffer) : 0);
    this.lastBuffer = buffer;
    this.lastSent = false;
    const start = this.txStart + buffer * TX_BUFFER_STRIDE;
    const writeFrame = () => {
      if (staged) return;
      batch.write16(R.EWRPTL, start);
      batch.writeBuffer([0x00], item.frame); // control byte 0: padding and CRC per MACON3
    };
    // When the previous frame is off the wire by the time this batch runs (its wire time is over,
    // no board-side wait), everything but TXRTS goes before the frame, so the board starts the
    // transmission as soon as the frame's last byte is in. Otherwise the frame goes first,
    // giving the previous one the write's time to finish.
    const previousGone = delayUs === 0 && (!previous || (previous.doneBy !== undefined && this.clock.now() >= previous.doneBy));
    const frameFirst = this.options.txBuffers === 2 && !previousGone;
    if (frameFirst) writeFrame();
    else beforeFrame();
    if (delayUs > 0) batch.delay(delayUs); // the previous frame's wire time, left after the write
    const eirAt = previous ? batch.read(R.EIR) : -1;
    // Errata #12: TXRST before the buffer is overwritten (one buffer) or the start moves (two).
    batch.bitSet(R.ECON1, R.ECON1_TXRST);
    batch.bitClear(R.ECON1, R.ECON1_TXRST);
    // Both buffers start on a 256-byte boundary: ETXSTL stays as initialised.
    if (this.startHigh !== start >> 8) {
      batch.write(R.ETXSTH, start >> 8);
      this.startHigh = start >> 8;
    }
    batch.write16(R.ETXNDL, start + item.frame.length);
    batch.bitClear(R.EIR, R.EIR_TXIF | R.EIR_TXERIF);
    if (!frameFirst) writeFrame();
    else beforeFrame();
    batch.bitSet(R.ECON1, R.ECON1_TXRTS);
    const sending: TxInFlight = { item, seq, resolved: false };
    this.inFlight = sending;
    this.unresolved.push(sending);
    // Settling by status, the next frame goes into the other buffer now, while this one is on the
    // wire (that buffer's frame is done: this send waited for it), and EIR is read after it: the
    // write takes about as long as this frame's time on the wire, so the answer usually settles it
    // and the next send is registers only — one round trip a frame, nothing assumed about time.
    const stageAt = this.settleByStatus ? this.stageNext(batch, 1 - buffer) : -1;
    const builtAt = this.clock.now();
    const trace = this.config.trace;
    if (trace.emit) {
      const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
      trace.emit('driver', 'out', `SPI batch #${seq}: ${item.retries ? `attempt ${item.retries + 1}, ` : ''}${staged ? `the frame written into it by the batch before, ` : `control byte + ${item.frame.length} bytes by WBM, `}TXRST (errata #12), ETXND, TXRTS${delayUs > 0 ? `, after a ${delayUs} µs wait on the board` : ''}`, item.frame);
      trace.emit('chip', 'out', `transmit buffer ${buffer} (${hex(start)}–${hex(start + item.frame.length)}); on TXRTS the MAC adds preamble, padding and FCS: ${(frameWireTimeMs(item.frame.length) * 1000).toFixed(0)} µs on the wire`, item.frame);
    }
    return {
      kind: 'send',
      handle: (r) => {
        if (previous) this.resolve(previous, r[eirAt]!, 'preempted');
        const now = this.clock.now();
        trace.emit?.('bridge', 'out', `batch #${seq} carried to the board over ${this.config.halName} and answered ${(now - builtAt).toFixed(2)} ms after it was built`, item.frame);
        sending.startedBy = now;
        sending.doneBy = now + frameWireTimeMs(item.frame.length) + this.options.txCompletionSlackMs;
        if (stageAt >= 0) this.resolve(sending, r[stageAt]!, 'observed');
        this.config.rearm();
      },
    };
  }

  /** The next queued frame into `buffer` (two buffers only), then an EIR read: its offset, or -1. */
  private stageNext(batch: CommandBatch, buffer: number): number {
    const next = this.queue[0];
    if (this.options.txBuffers !== 2 || !next) return -1;
    this.queue.shift();
    this.staged = { item: next, buffer };
    batch.write16(R.EWRPTL, this.txStart + buffer * TX_BUFFER_STRIDE);
    batch.writeBuffer([0x00], next.frame);
    return batch.read(R.EIR);
  }

  /**
   * What EIR says about a transmission. `preempted`: read just before our TXRST for the next
   * frame, so "not done" means we cut it short and it must go again.
   */
  private resolve(tx: TxInFlight, eir: number, how: Observation): void {
    if (tx.resolved) return;
    if (eir & R.EIR_TXERIF) {
      // Errata #13: in half duplex a link pulse can pass for a late collision and abort the
      // frame; it goes again.
      tx.resolved = true;
      this.config.trace.emit?.('chip', 'out', 'transmit aborted (EIR.TXERIF: late collision, errata #13): queued again', tx.item.frame);
      this.retransmit(tx.item, 'tx-abort');
    } else if (eir & R.EIR_TXIF) {
      tx.resolved = true;
      this.config.trace.emit?.('chip', 'out', `sent: EIR.TXIF, seen ${how === 'observed' ? 'in a receive run' : how === 'checked' ? 'by a completion check' : 'before the next transmission'}`, tx.item.frame);
      if (tx === this.inFlight) this.lastSent = true;
      this.counters.txFrames++;
      this.counters.txBytes += tx.item.frame.length;
    } else if (how === 'preempted') {
      // Our TXRST cut it short: it took longer than its wire time and the cover (a PAUSE frame
      // held it, or collisions kept it back). From here on, each send waits for the last one's status.
      tx.resolved = true;
      this.sendAhead = false;
      this.retransmit(tx.item, 'tx-preempted');
    } else if (how === 'checked' && tx.startedBy !== undefined) {
      const elapsed = this.clock.now() - tx.startedBy;
      if (elapsed >= this.options.txTimeoutMs) {
        // Errata #12: the transmitter can stall with TXRTS set; the next send's TXRST clears it.
        tx.resolved = true;
        this.retransmit(tx.item, 'tx-timeout');
      } else {
        // Still going (deferred, backing off, paused): look again in a while, sooner while the
        // delay is short (half-duplex deferral is a frame time or two).
        tx.doneBy = this.clock.now() + Math.min(Math.max(this.options.txRecheckMs, elapsed), this.options.txTimeoutMs - elapsed);
      }
    }
    if (tx.resolved) {
      const at = this.unresolved.indexOf(tx);
      if (at >= 0) this.unresolved.splice(at, 1);
      if (this.inFlight === tx) this.inFlight = undefined;
    }
    this.config.rearm();
  }

  private retransmit(item: TxItem, reason: string): void {
    this.config.count(reason);
    this.unstage(); // it goes after the frame sent again
    item.retries++;
    if (item.retries > this.options.txMaxRetries) {
      countDrop(this.counters.drops, reason);
      return;
    }
    this.queue.unshift(item);
  }
}
