import { HalError, type Hal } from '../hal.js';
import type { Clock } from '../../time/clock.js';
import { RearmableTimer } from '../../time/timer.js';
import { WorkLoop } from '../work-loop.js';
import { SafetyNetPoll } from '../safety-net.js';
import { emptyNicStats, type Nic, type NicCapabilities, type NicHandlers, type NicStats } from '../../link/nic.js';
import { countDrop } from '../../stats/counters.js';
import { ETHERNET_HEADER_LENGTH } from '../../wire/ethernet.js';
import { FCS_BYTES } from '../../wire/wire-time.js';
import { crc32 } from '../../wire/crc32.js';
import { formatMac, type MacAddress } from '../../wire/address.js';
import { BankTracker, CommandBatch } from './batch.js';
import {
  ECON2_CONFIGURED,
  Enc28j60Error,
  configureChip,
  enableReception,
  identifyChip,
  quiesce,
  readLink,
  receiveFilter,
  resetChip,
  resetReceiveRing,
  type ChipAccess,
} from './init.js';
import { ENC28J60_DEFAULTS, type Enc28j60Options } from './options.js';
import * as R from './registers.js';
import { parseRun, receiveProgram } from './rx-program.js';
import { RingReader } from './rx-reader.js';
import { receivedOk, type RxHeader } from './rx-ring.js';
import { NO_TRACE, type TraceHook } from '../../stats/trace.js';
import type { ChipStatus } from '../status.js';
import { ETHERNET_MTU, MAX_FRAME_BYTES, TxScheduler, type ResultHandler } from './tx-scheduler.js';

export { Enc28j60Error, type Enc28j60ErrorCode } from './init.js';

/**
 * ENC28J60 driver over a HAL (datasheet DS39662E, silicon errata DS80349C; docs/enc28j60.md).
 *
 * Every SPI batch is a round trip over the serial bridge, so the driver is built around batches:
 * - receive: an interrupt (or the safety-net poll) costs one batch that reads EIR, EPKTCNT, the
 *   next packet header and the first bytes of its frame together; a longer frame costs one more
 *   batch that reads the rest, its FCS and the *following* header in one RBM, with EPKTCNT read
 *   just before so the speculative bytes are known to be valid. When more packets wait, that batch
 *   also reads ERXWRPT, and the next one takes every packet up to it in one RBM.
 * - transmit (tx-scheduler.ts): one batch writes the frame into the transmit buffer not on the
 *   wire, pulses TXRST (errata #12) and sets TXRTS; completion (TXIF/TXERIF in EIR) is read by
 *   whatever batch runs after the wire time — the next transmission, an interrupt service, or a
 *   small check batch.
 * - the two are separate chains: a receive batch is built from the previous receive batch's
 *   answer, a send from the previous send's (or, with the HAL's minWriteMs floor, right behind
 *   it); neither waits for the other.
 * Batches execute in the order they are built; the driver's model of the chip (bank, ERDPT, the
 * ring) is updated when a batch is built, so the next one can be built before this one returns.
 *
 * With a HAL that runs programs (SpiDevice.arm: the bridge sketch, protocol version 2) receive
 * needs no batches at all: the driver leaves a receive program on the board (rx-program.ts),
 * which reads each frame by itself when INT falls — EIR, EPKTCNT, ERDPT, the header, then exactly
 * the frame (its length taken from the header), PKTDEC — and streams it back. The driver only
 * checks what arrives, releases ring space (ERXRDPT) and clears flags. Every batch then ends in
 * bank 0, the bank the program assumes.
 *
 * Bring-up and the other sequences that wait on their own answers are in init.ts; the model of
 * the receive ring and its reads in rx-reader.ts, its arithmetic in rx-ring.ts. This class wires
 * them: the work loop, timers, errors, the interrupt service and the receive program's runs.
 */

export interface Enc28j60NicConfig {
  hal: Hal;
  clock: Clock;
  mac: MacAddress;
  name?: string;
  options?: Partial<Enc28j60Options>;
  /** Report what the driver, the chip's buffers and the link to the board did with each frame. */
  trace?: TraceHook;
}

/** Things the driver recovered from or worked around, by name (not drops). */
export type Enc28j60Events = Record<string, number>;

/**
 * A recovery due before any other work. Re-initialisation (SRC and everything after it) resets
 * the receiver too, so it takes the place of a receiver reset, never the other way round.
 */
type Recovery = 'none' | 'rx-reset' | 'reinit';

export class Enc28j60Nic implements Nic {
  readonly name: string;
  readonly mac: MacAddress;
  readonly mtu = ETHERNET_MTU;
  readonly capabilities: NicCapabilities;
  /** Silicon revision found at start(), e.g. 'B7'. */
  revision: string | undefined;
  readonly events: Enc28j60Events = {};

  private readonly hal: Hal;
  private readonly clock: Clock;
  private readonly options: Enc28j60Options;
  private readonly counters: NicStats = emptyNicStats();
  private readonly tx: TxScheduler;
  private readonly ring: RingReader;
  private readonly chip: ChipAccess;
  private handlers: NicHandlers | undefined;
  private readonly trace: TraceHook;
  private promiscuous = false;

  private readonly bank = new BankTracker();
  private seq = 0;
  private running = false;
  private up = false;

  // Work.
  private readonly work = new WorkLoop(() => this.step(), (error) => this.onError(error));
  private recovery: Recovery = 'none';
  /** Re-initialisation after a HAL error waits until then (see errorBackoffMs). */
  private initNotBefore = 0;
  private errorBackoff: number;
  /** The HAL lost its link to the board: nothing reaches the chip until it is back. */
  private paused = false;
  private interruptPending = false;
  private pollPending = false;
  /** LINKIF was seen: read the PHY once every batch is back. */
  private linkCheckPending = false;
  private filterDirty = false;
  /** EIE.INTIE was cleared by a service and must be set again when it is done. */
  private intieCleared = false;
  /** EIR flags seen and not yet cleared. */
  private eirToClear = 0;
  /**
   * Batches out that clear RXERIF: until the first is answered, an EIR read (a run's or a
   * batch's) may have been taken before the clear and still show the overflow already counted.
   */
  private rxerifClearsOut = 0;
  private rxerifClearQueued = false;
  private inFlightBatches = 0;
  /** A receive-chain batch (service or ring read) is out: the next one is built from its answer. */
  private rxBatchOut = false;
  /** Bumped when the chip is re-initialised or its ring reset: answers from before are stale. */
  private epoch = 0;
  /** Receive is the board's program (options.rxProgram on a HAL with SpiDevice.arm). */
  private programArmed = false;
  /** Program mode: ring space taken by runs is to be released (ERXRDPT) with the next batch. */
  private releaseDue = false;

  private multicastJoined = 0;

  /** The safety-net poll (pollIntervalMs, backing off to idlePollIntervalMs). */
  private readonly pollTimer: RearmableTimer;
  private readonly poll: SafetyNetPoll;
  /** The next time the loop must look without being kicked: a transmission's end, the error backoff. */
  private readonly wakeTimer: RearmableTimer;
  private unsubscribers: (() => void)[] = [];

  constructor(config: Enc28j60NicConfig) {
    this.hal = config.hal;
    this.clock = config.clock;
    this.mac = Uint8Array.from(config.mac);
    this.pollTimer = new RearmableTimer(this.clock, () => this.onPoll());
    this.wakeTimer = new RearmableTimer(this.clock, () => this.kick());
    this.name = config.name ?? `enc28j60-${formatMac(this.mac)}`;
    this.options = { ...ENC28J60_DEFAULTS, ...config.options };
    this.poll = new SafetyNetPoll(this.pollTimer, this.options.pollIntervalMs, this.options.idlePollIntervalMs);
    this.trace = config.trace ?? NO_TRACE;
    const rxEnd = this.options.rxEnd;
    if ((rxEnd & 1) === 0) throw new RangeError('rxEnd must be odd (ENC28J60 errata #14)');
    // Each frame in the ring: its header before it, FCS, pad to even.
    this.capabilities = {
      maxFrameSize: MAX_FRAME_BYTES,
      multicastFilter: false,
      rxCrcCheck: true,
      receiveBuffer: { bytes: rxEnd + 1, frameOverhead: R.RX_HEADER_BYTES + FCS_BYTES + 1 },
    };
    this.tx = new TxScheduler({
      clock: this.clock,
      spi: this.hal.spi,
      options: this.options,
      counters: this.counters,
      count: (event) => this.count(event),
      rearm: () => this.armWakeTimer(),
      trace: this.trace,
      halName: this.hal.name,
    });
    this.ring = new RingReader(rxEnd, this.options, {
      take: (header, frame, fcs) => this.take(header, frame, fcs),
      tooLong: () => this.tooLong(),
      corrupt: () => this.ringCorrupt(),
      lost: () => {
        this.pollPending = true;
      },
    });
    this.chip = { hal: this.hal, options: this.options, bank: this.bank, newBatch: () => this.newBatch() };
    this.errorBackoff = this.options.errorBackoffMs;
    const readAhead = this.options.rxReadAheadBytes;
    if (!Number.isInteger(readAhead) || readAhead < 0 || readAhead > this.options.maxFrameLength) {
      throw new RangeError('rxReadAheadBytes must be an integer from 0 to maxFrameLength');
    }
  }

  get linkUp(): boolean {
    return this.up;
  }

  attach(handlers: NicHandlers): void {
    this.handlers = handlers;
  }

  stats(): NicStats {
    return this.counters;
  }

  /** The chip's state as the driver knows it (src/drivers/status.ts). */
  status(): ChipStatus {
    return {
      chip: 'ENC28J60',
      linkUp: this.up,
      speedMbps: 10,
      revision: this.revision,
      promiscuous: this.promiscuous,
      ringBytes: this.options.rxEnd + 1,
      ringUsed: this.ring.bytesInUse,
      packetsWaiting: this.ring.knownPending,
      overflows: this.counters.drops['rx-overflow'] ?? 0,
      transmitQueue: this.tx.pending,
      transmitErrors: ['tx-abort', 'tx-preempted', 'tx-timeout'].reduce((n, reason) => n + (this.events[reason] ?? 0), 0),
    };
  }

  /**
   * Receive every frame on the wire, not only ours (DS-ENC §8: ERXFCON with no filter enabled).
   * The stack above still ignores frames not addressed to it; a capture sees them.
   */
  setPromiscuous(on: boolean): void {
    if (this.promiscuous === on) return;
    this.promiscuous = on;
    this.filterDirty = true;
    // Before start() the initialisation writes the filter anyway.
    if (this.running) this.kick();
  }

  // ---- Start / stop ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    await this.initialise();
    this.running = true;
    this.unsubscribers.push(
      this.hal.interrupt.onChange((asserted) => {
        if (asserted) this.poll.interruptSeen();
        // With a receive program the board answers the line itself (and keeps quiet about it).
        if (!asserted || this.programArmed) return;
        this.interruptPending = true;
        this.kick();
      }),
      this.hal.onEvent((event) => {
        if (event.type === 'link-lost') {
          // Nothing reaches the chip until the bridge is back: to the stack the link is down.
          this.paused = true;
          this.setLink(false);
        } else {
          this.paused = false;
          this.scheduleReinit('hal-link-restored');
        }
      }),
    );
    this.poll.start();
    if (this.hal.interrupt.asserted) this.interruptPending = true;
    this.kick();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.pollTimer.stop();
    this.wakeTimer.stop();
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    try {
      await this.disarmProgram();
      await quiesce(this.chip);
    } catch {
      // Best effort: the chip may already be gone.
    }
    this.tx.dropQueued('stopped');
    this.tx.forgetSent();
    this.setLink(false);
  }

  // ---- Transmit API ---------------------------------------------------------------------------

  transmit(frame: Uint8Array): boolean {
    if (frame.length < ETHERNET_HEADER_LENGTH || frame.length > this.capabilities.maxFrameSize) {
      countDrop(this.counters.drops, 'bad-length');
      return false;
    }
    if (!this.running || !this.up) {
      countDrop(this.counters.drops, 'link-down');
      return false;
    }
    if (!this.tx.enqueue(frame)) return false;
    this.poll.frameMoved();
    this.kick();
    return true;
  }

  /** Multicast reception: the chip's MCEN accepts every group; the stack filters exactly. */
  joinMulticast(_mac: MacAddress): void {
    this.multicastJoined++;
    this.filterDirty = true;
    this.kick();
  }

  leaveMulticast(_mac: MacAddress): void {
    this.multicastJoined = Math.max(0, this.multicastJoined - 1);
    this.filterDirty = true;
    this.kick();
  }

  // ---- Initialisation (init.ts) ---------------------------------------------------------------

  private async initialise(): Promise<void> {
    this.epoch++;
    await this.disarmProgram();
    CommandBatch.invalidate(this.bank);
    this.tx.requeueInFlight();
    await resetChip(this.chip);
    this.revision = await identifyChip(this.chip);
    const linkUp = await configureChip(this.chip, { mac: this.mac, txStart: this.tx.txStart, filter: this.receiveFilter() });
    this.tx.chipConfigured();

    this.ring.reset();
    this.intieCleared = false;
    this.eirToClear = 0;
    this.rxerifClearsOut = 0;
    this.rxerifClearQueued = false;
    this.filterDirty = false;
    this.releaseDue = false;
    // What was due is done from here on; a recovery asked for while reception is enabled and
    // the program armed (a run's answer can come before arm() resolves) stays due.
    this.recovery = 'none';
    const useProgram = this.programPossible();
    if (useProgram) this.bank.home = 0;
    await enableReception(this.chip);
    if (useProgram) await this.armProgram();
    this.errorBackoff = this.options.errorBackoffMs;
    this.setLink(linkUp);
  }

  private receiveFilter(): number {
    return receiveFilter(this.multicastJoined > 0, this.promiscuous);
  }

  /**
   * The new receive filter, with reception stopped around it: the datasheet changes the filters
   * only while ECON1.RXEN is clear (DS-ENC §8), since a change lands in the middle of a frame
   * coming in. A frame arriving in those few SPI bytes is missed, as on any filter change.
   */
  private appendFilterRewrite(batch: CommandBatch): void {
    batch.bitClear(R.ECON1, R.ECON1_RXEN);
    batch.write(R.ERXFCON, this.receiveFilter());
    batch.bitSet(R.ECON1, R.ECON1_RXEN);
    this.filterDirty = false;
  }

  // ---- The work loop --------------------------------------------------------------------------

  private kick(): void {
    this.work.kick();
  }

  /** Build and run one batch of whatever is due. False when there is nothing to do now. */
  private async step(): Promise<boolean> {
    if (!this.running || this.paused) return false;
    // The sequences below wait on their own answers; they start once every batch is back (each
    // answer kicks the pump again).
    if ((this.recovery !== 'none' || this.linkCheckPending) && this.inFlightBatches > 0) return false;
    if (this.recovery === 'reinit') {
      if (this.clock.now() < this.initNotBefore) {
        this.wakeAtTime(this.initNotBefore);
        return false;
      }
      await this.initialise();
      this.interruptPending = true; // whatever arrived meanwhile
      return true;
    }
    if (this.recovery === 'rx-reset') {
      await this.resetReceiver();
      return true;
    }
    if (this.linkCheckPending) {
      this.linkCheckPending = false;
      this.setLink(await readLink(this.chip));
      return true;
    }

    const batch = this.newBatch();
    const seq = this.seq;
    const handlers: ResultHandler[] = [];
    let readsEir = false;
    let endService = false;
    let endProgramService = false;
    let receives = false;
    let runAfter = false;
    // Receive work is a chain: each batch is built from what the previous one read. Transmit is
    // another chain, independent of it. A batch of one chain never waits for the other's answer,
    // so a frame to send goes out behind an interrupt service still in flight, and the link
    // carries both directions at once.
    if (this.programArmed) {
      // Program mode: the runs are the receive chain. Releasing the ring and clearing flags only
      // write, so they never wait for an answer (a poll's may sit behind a long run's stream);
      // only the poll itself is one at a time.
      this.interruptPending = false; // the program answers the line
      if (this.filterDirty) this.appendFilterRewrite(batch);
      if (this.pollPending && !this.rxBatchOut) {
        handlers.push(this.planProgramPoll(batch, seq));
        readsEir = true;
        receives = true;
        runAfter = true;
      }
      endProgramService = (this.releaseDue && this.ring.holdsSpace) || this.eirToClear !== 0;
    } else if (!this.rxBatchOut) {
      if (this.filterDirty) this.appendFilterRewrite(batch);
      if (this.ring.knownPending > 0) {
        const read = this.ring.planRead(batch);
        if (read.last) this.appendServiceEnd(batch);
        handlers.push(read.handle);
        receives = true;
      } else if (this.interruptPending || this.pollPending) {
        handlers.push(this.planService(batch, seq));
        readsEir = true;
        receives = true;
      } else if (this.ring.holdsTaken || this.intieCleared || this.eirToClear) {
        endService = true;
      }
    }
    // Program mode: the ring is released in the same batch as a transmission, before TXRTS (the
    // frame sent may be the ACK for what the runs took, and the peer's next segments must find the
    // space free) but not in front of the frame's register writes when those go first: the
    // release then goes with them, ahead of the frame bytes, so the batch still ends in TXRTS and
    // the board starts the frame as soon as its last byte is in.
    let serviceEnd = endProgramService ? () => this.appendProgramServiceEnd(batch) : undefined;
    const tx = this.tx.plan(batch, seq, {
      linkUp: this.up,
      programArmed: this.programArmed,
      batchReadsEir: readsEir,
      beforeFrame: () => {
        serviceEnd?.();
        serviceEnd = undefined;
      },
    });
    serviceEnd?.();
    if (tx) handlers.push(tx.handle);
    // The end of a service only writes and nothing waits on it: after the transmission, so a
    // reply to the frame just taken starts on the wire as early as the batch allows.
    if (endService) this.appendServiceEnd(batch);
    if (batch.isEmpty) {
      this.armWakeTimer();
      return false;
    }
    // Nothing waits for the answer here: the next batch (of the other chain, or one that only
    // writes) is built behind this one while it is out. Its handlers run when it returns, unless
    // the chip was re-initialised meanwhile (the answer describes a chip state that is gone).
    const epoch = this.epoch;
    if (receives) this.rxBatchOut = true;
    if (tx) this.tx.dispatched(tx);
    this.inFlightBatches++;
    const clearsRxerif = this.rxerifClearQueued;
    this.rxerifClearQueued = false;
    if (clearsRxerif) this.rxerifClearsOut++;
    const settle = () => {
      this.inFlightBatches--;
      if (clearsRxerif) this.rxerifClearsOut = Math.max(0, this.rxerifClearsOut - 1);
      if (receives) this.rxBatchOut = false;
      if (tx) this.tx.settled(tx);
    };
    this.hal.spi.transfer(batch.finish()).then(
      (result) => {
        settle();
        if (epoch === this.epoch) {
          // A handler hands frames to the stack, which may transmit (and kick) at once: no batch
          // may be built from the half-updated ring model meanwhile.
          this.work.handle(() => {
            for (const handle of handlers) handle(result);
          });
        }
        this.kick();
      },
      (error: unknown) => {
        settle();
        if (epoch === this.epoch) this.onError(error);
        this.kick();
      },
    );
    // The poll also runs the program once, right behind its batch: a missed edge, or errata #6
    // (PKTIF, and so INT, is unreliable) must not leave a packet waiting.
    const run = runAfter ? this.hal.spi.runArmed?.() : undefined;
    if (run) {
      this.poll.pollRunStarted(run);
      run.catch((error: unknown) => {
        if (epoch === this.epoch) this.onError(error);
        this.kick();
      });
    }
    return true;
  }

  private newBatch(): CommandBatch {
    this.seq++;
    return new CommandBatch(this.bank);
  }

  // ---- Receive --------------------------------------------------------------------------------

  /**
   * Interrupt service (or poll): clear INTIE so every later flag gives a fresh edge (DS-ENC §12),
   * read EIR, the reset sentinel and EPKTCNT, then speculatively the packet at `nextPacket`: its
   * header and, after an interrupt, the first `rxReadAheadBytes` of it. The batch cannot branch on
   * EPKTCNT, so those bytes are read whether or not a packet is there; EPKTCNT, read just before,
   * says how many of them are valid (never EIR.PKTIF, which is unreliable: errata #6). A frame
   * that fits is delivered from this batch alone.
   */
  private planService(batch: CommandBatch, seq: number): ResultHandler {
    const fromInterrupt = this.interruptPending || this.hal.interrupt.asserted;
    this.interruptPending = false;
    this.pollPending = false;
    // Bank 0 work first (ERDPT, ERXRDPT), so the batch ends in bank 1 where reads continue (EPKTCNT).
    this.ring.prepare(batch, this.ring.nextPacket);
    if (fromInterrupt && !this.intieCleared) {
      batch.bitClear(R.EIE, R.EIE_INTIE);
      this.intieCleared = true;
    }
    const flags = this.planFlagsRead(batch, seq);
    // The poll usually finds nothing: it reads the header only and leaves the link quiet.
    const read = this.ring.read(batch, this.ring.nextPacket, R.RX_HEADER_BYTES + (fromInterrupt ? this.options.rxReadAheadBytes : 0));
    return (r) => {
      if (!flags(r)) return;
      read.noteWritePointer(r);
      this.ring.absorb(read.data(r), r[read.countAt]!);
    };
  }

  /**
   * A header that cannot be where it was read: the driver's place in the ring is lost (or the
   * chip's pointers went wrong), and only a receiver reset recovers.
   */
  private ringCorrupt(): void {
    countDrop(this.counters.drops, 'rx-ring-corrupt');
    this.needRecovery('rx-reset');
  }

  /**
   * A packet whose byte count is over MAMXFL but whose header is otherwise the chip's own (next
   * packet pointer where the count puts it, RSV bit 31 clear): a frame the chip stored whole
   * (MACON3.HFRMEN, DS-ENC Register 6-2), too long for the stack. A counted drop, skipped by its
   * next packet pointer; the ring is fine.
   */
  private tooLong(): void {
    countDrop(this.counters.drops, 'rx-too-long');
  }

  /**
   * Hand a received frame (without its FCS) to the stack, or count why not. The chip checked the
   * FCS on the wire; checked again here, it covers the frame's way from the chip's buffer to us —
   * SPI and the serial link — where a flipped bit would otherwise reach the stack as data whenever
   * it cancels out in the IP and TCP checksums (two flips can).
   */
  private take(header: RxHeader, frame: Uint8Array, fcs: number): void {
    const verdict = !receivedOk(header) ? 'rx-bad-frame' : crc32(frame) !== fcs ? 'rx-bad-fcs' : undefined;
    if (this.trace.emit) {
      this.trace.emit('chip', 'in', `in the receive ring: status vector ${header.byteCount} bytes with FCS, ${receivedOk(header) ? 'received OK' : 'receive error'}; next packet at 0x${header.next.toString(16).padStart(4, '0')}`, frame);
      this.trace.emit('bridge', 'in', this.programArmed ? `streamed to the host by the board's receive program as SPI read it (no round trip; ${this.hal.name})` : `read by a receive batch over ${this.hal.name}`, frame);
      this.trace.emit('driver', 'in', verdict ? `dropped: ${verdict}` : 'status vector and FCS checked; ring space released with a later batch; handed to the stack', frame);
    }
    if (verdict !== undefined) {
      countDrop(this.counters.drops, verdict);
      return;
    }
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    this.tx.receivedFrame(frame.length);
    this.deliver(frame);
  }

  private deliver(frame: Uint8Array): void {
    try {
      this.handlers?.receive(frame);
    } catch (error) {
      // The consumer's bug must not look like a chip failure (which would re-initialise it).
      this.count('receive-handler-threw');
      this.lastInternalError = error;
    }
  }

  /**
   * Decrement and release what was taken, clear the flags we saw and set INTIE again: the
   * datasheet's end of interrupt service (DS-ENC §12).
   */
  private appendServiceEnd(batch: CommandBatch): void {
    this.ring.finishService(batch);
    if (this.eirToClear) {
      batch.bitClear(R.EIR, this.eirToClear);
      if (this.eirToClear & R.EIR_RXERIF) this.rxerifClearQueued = true;
      this.eirToClear = 0;
    }
    if (this.intieCleared) {
      batch.bitSet(R.EIE, R.EIE_INTIE);
      this.intieCleared = false;
    }
  }

  /** EIR's receive-error and link flags (TX completion is the transmit chain's business). */
  private noteFlags(eir: number): void {
    if (eir & R.EIR_RXERIF && !(this.eirToClear & R.EIR_RXERIF) && this.rxerifClearsOut === 0) {
      // Ring full or EPKTCNT at 255: the chip dropped a frame (DS-ENC §12.1.2). The ring itself
      // is intact, so draining is the recovery. Counted once until the flag is seen cleared.
      countDrop(this.counters.drops, 'rx-overflow');
      this.eirToClear |= R.EIR_RXERIF;
    }
    if (eir & R.EIR_LINKIF) this.linkCheckPending = true;
  }

  /**
   * EIR and ECON2 (the reset sentinel) in `batch`; the returned check, given the answer, notes
   * what EIR says (a transmission seen done, RXERIF, LINKIF) and returns false if the chip was
   * reset underneath (SRC or power loss: ECON2 back to its reset value; re-initialisation is due).
   */
  private planFlagsRead(batch: CommandBatch, seq: number): (r: Uint8Array) => boolean {
    const eirAt = batch.read(R.EIR);
    const econ2At = batch.read(R.ECON2);
    const observeTx = this.tx.observer(seq);
    return (r) => {
      if (r[econ2At] !== ECON2_CONFIGURED) {
        this.scheduleReinit('chip-reset');
        return false;
      }
      const eir = r[eirAt]!;
      observeTx(eir);
      this.noteFlags(eir);
      return true;
    };
  }

  /** The recovery for a corrupt ring: RXRST and the ring as initialised (init.ts). */
  private async resetReceiver(): Promise<void> {
    this.count('rx-reset');
    this.epoch++;
    // The program moves ERDPT by itself: it must be gone before the ring is reset under it.
    const rearm = this.programArmed;
    await this.disarmProgram();
    await resetReceiveRing(this.chip, rearm ? 0 : undefined);
    if (this.recovery === 'rx-reset') this.recovery = 'none';
    this.ring.reset();
    this.releaseDue = false;
    if (rearm) await this.armProgram();
    this.pollPending = true;
  }

  // ---- Receive by program (rx-program.ts; docs/bridge-protocol.md §3.2) -------------------------

  private programPossible(): boolean {
    return this.options.rxProgram && this.hal.spi.arm !== undefined;
  }

  /** Leave the receive program on the board; on a board that cannot run it, stay with batches. */
  private async armProgram(): Promise<void> {
    const epoch = this.epoch;
    // Runs may be reported before arm() resolves (the first one follows its answer at once).
    this.programArmed = true;
    try {
      await this.hal.spi.arm!(receiveProgram(this.options.rxEnd + 1), (result) => this.onProgramRun(result, epoch), { quietInterrupts: true });
    } catch (error) {
      this.programArmed = false;
      this.bank.home = undefined;
      if (error instanceof HalError && (error.code === 'EUNSUPPORTED' || error.code === 'EINVAL')) {
        this.count('rx-program-unavailable');
        return;
      }
      throw error;
    }
  }

  /** Take the program off the board (best effort: a board that reset or went away has none). */
  private async disarmProgram(): Promise<void> {
    if (!this.programArmed) return;
    this.programArmed = false;
    this.bank.home = undefined;
    try {
      await this.hal.spi.disarm?.();
    } catch {
      // The link is down or the board reset: either way no program runs; initialise() reports
      // a link that stays down.
    }
  }

  private onProgramRun(result: Uint8Array, epoch: number): void {
    if (epoch !== this.epoch || !this.programArmed) return; // from before a reset of the ring or chip
    this.work.handle(() => this.absorbRun(result));
    this.kick();
  }

  /** One run's bytes: EIR, EPKTCNT and, when a packet waited, ERDPT, its header and its frame. */
  private absorbRun(r: Uint8Array): void {
    const run = parseRun(r, this.options.rxEnd, this.options.maxFrameLength);
    if (run.kind === 'malformed') {
      this.count('rx-run-malformed');
      return;
    }
    this.noteFlags(run.eir);
    this.tx.observeRun(run.eir);
    if (run.kind === 'empty') return;
    if (run.kind === 'corrupt') {
      // ERDPT is wherever the capped read left it: only a reset of the receiver recovers.
      this.epoch++;
      this.ringCorrupt();
      return;
    }
    const { header } = run;
    if (run.kind === 'too-long') {
      if (run.start !== this.ring.nextPacket) countDrop(this.counters.drops, 'rx-run-lost');
      this.tooLong();
      this.ring.takenByProgram(header.next);
      if (run.packetCount === 1 || this.ring.releaseNeeded()) this.releaseDue = true;
      return;
    }
    // A run answer lost on the link (CRC) took its frame with it: the board had read it and
    // decremented EPKTCNT. The ring is still consistent; the frame is a drop like any other.
    if (run.start !== this.ring.nextPacket) countDrop(this.counters.drops, 'rx-run-lost');
    this.poll.frameReceived();
    this.take(header, run.frame, run.fcs);
    this.ring.takenByProgram(header.next);
    // Release at the end of a burst (EPKTCNT was 1), or when a share of the ring is held.
    if (run.packetCount === 1 || this.ring.releaseNeeded()) this.releaseDue = true;
  }

  /** The safety-net poll in program mode: the reset sentinel and EIR; the program runs right after. */
  private planProgramPoll(batch: CommandBatch, seq: number): ResultHandler {
    this.pollPending = false;
    const flags = this.planFlagsRead(batch, seq);
    return (r) => void flags(r);
  }

  /** Release what the runs took and clear the flags seen (ERDPT belongs to the program). */
  private appendProgramServiceEnd(batch: CommandBatch): void {
    if (this.releaseDue && this.ring.holdsSpace) this.ring.release(batch);
    this.releaseDue = false;
    if (this.eirToClear) {
      batch.bitClear(R.EIR, this.eirToClear);
      if (this.eirToClear & R.EIR_RXERIF) this.rxerifClearQueued = true;
      this.eirToClear = 0;
    }
  }

  // ---- Link -----------------------------------------------------------------------------------

  private setLink(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (!up) this.tx.dropQueued('link-down');
    this.count(up ? 'link-up' : 'link-down');
    this.handlers?.linkChange(up);
  }

  // ---- Timers and errors ----------------------------------------------------------------------

  private onPoll(): void {
    if (!this.running) return;
    this.poll.rearm(this.programArmed);
    if (this.rxBatchOut) return; // a service or ring read is out: it sees what a poll would
    // Safety net: a missed INT edge, or a chip reset underneath (interrupts silently off).
    this.pollPending = true;
    this.kick();
  }

  /** Wake the loop when the transmit side next needs it (tx-scheduler.ts wakeTime()). */
  private armWakeTimer(): void {
    const at = this.tx.wakeTime(this.programArmed);
    if (at !== undefined) this.wakeAtTime(at);
  }

  /** Wake the loop at `at`, unless it is to wake sooner already. */
  private wakeAtTime(at: number): void {
    if (this.wakeTimer.armed && this.wakeTimer.deadline <= at) return;
    this.wakeTimer.arm(at - this.clock.now());
  }

  /** A recovery is due; re-initialisation takes the place of a receiver reset (see Recovery). */
  private needRecovery(recovery: Exclude<Recovery, 'none'>): void {
    if (this.recovery !== 'reinit') this.recovery = recovery;
  }

  private scheduleReinit(reason: string): void {
    this.count(reason);
    this.needRecovery('reinit');
    this.ring.forgetPending();
    this.kick();
  }

  private onError(error: unknown): void {
    // Nothing escapes the loop: a failed batch may or may not have run, so start over cleanly.
    CommandBatch.invalidate(this.bank);
    this.epoch++; // answers still out describe the chip before the failure
    const code = error instanceof HalError || error instanceof Enc28j60Error ? error.code : 'internal';
    this.count(`error-${code}`);
    this.needRecovery('reinit');
    this.ring.forgetPending();
    this.initNotBefore = this.clock.now() + this.errorBackoff;
    this.errorBackoff = Math.min(this.errorBackoff * 2, this.options.errorBackoffMaxMs);
    if (!(error instanceof HalError) && !(error instanceof Enc28j60Error)) this.lastInternalError = error;
    this.wakeAtTime(this.initNotBefore);
  }

  /** The last unexpected exception inside the driver (a bug), for tests and diagnostics. */
  lastInternalError: unknown;

  private count(event: string): void {
    this.events[event] = (this.events[event] ?? 0) + 1;
  }
}
