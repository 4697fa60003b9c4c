import { HalError, type Hal, type SpiTransaction } from '../hal.js';
import type { Clock, TimerHandle } from '../../time/clock.js';
import { emptyNicStats, type Nic, type NicCapabilities, type NicHandlers, type NicStats } from '../../link/nic.js';
import { countDrop } from '../../stats/counters.js';
import { formatMac, type MacAddress } from '../../wire/address.js';
import { frameWireTimeMs } from '../../wire/wire-time.js';
import { BankTracker, CommandBatch } from './batch.js';
import { ENC28J60_DEFAULTS, type Enc28j60Options } from './options.js';
import * as R from './registers.js';

/**
 * ENC28J60 driver over a HAL (chips.md §1; DS39662E; errata DS80349C).
 *
 * Every SPI batch is a round trip over the serial bridge, so the driver is built around batches:
 * - receive: an interrupt (or the safety-net poll) costs one batch that reads EIR, EPKTCNT, the
 *   next packet header and the first bytes of its frame together; a longer frame costs one more
 *   batch that reads the rest, its FCS and the *following* header in one RBM, with EPKTCNT read
 *   just before so the speculative bytes are known to be valid. When more packets wait, that batch
 *   also reads ERXWRPT, and the next one takes every packet up to it in one RBM.
 * - transmit: one batch writes the frame into the transmit buffer not on the wire, pulses TXRST
 *   (errata #12) and sets TXRTS; completion (TXIF/TXERIF in EIR) is read by whatever batch runs
 *   after the wire time — the next transmission, an interrupt service, or a small check batch.
 * - the two are separate chains: a receive batch is built from the previous receive batch's
 *   answer, a send from the previous send's (or, with the HAL's minWriteMs floor, right behind
 *   it); neither waits for the other.
 * Batches execute in the order they are built; the driver's model of the chip (bank, ERDPT, the
 * ring) is updated when a batch is built, so the next one can be built before this one returns.
 *
 * With a HAL that runs programs (SpiDevice.arm: the bridge sketch, protocol version 2) receive
 * needs no batches at all: the driver leaves a receive program on the board (receiveProgram()),
 * which reads each frame by itself when INT falls — EIR, EPKTCNT, ERDPT, the header, then exactly
 * the frame (its length taken from the header), PKTDEC — and streams it back. The driver only
 * checks what arrives, releases ring space (ERXRDPT) and clears flags. Every batch then ends in
 * bank 0, the bank the program assumes.
 */

export type Enc28j60ErrorCode = 'ENODEV' | 'EIO';

export class Enc28j60Error extends Error {
  constructor(
    readonly code: Enc28j60ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'Enc28j60Error';
  }
}

export interface Enc28j60NicConfig {
  hal: Hal;
  clock: Clock;
  mac: MacAddress;
  name?: string;
  options?: Partial<Enc28j60Options>;
}

/** Things the driver recovered from or worked around, by name (not drops). */
export type Enc28j60Events = Record<string, number>;

interface RxHeader {
  next: number;
  byteCount: number;
  status: number;
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

type ResultHandler = (result: Uint8Array) => void;

const EMPTY = new Uint8Array(0);

/** `a` then `b`, copying only when both hold bytes. */
function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Control byte + the largest frame + the 7-byte transmit status vector the chip writes after it. */
const TX_BUFFER_BYTES = 1 + 1514 + 7;
/** Distance between the two transmit buffers: a multiple of 256, so their ETXSTL/EWRPTL agree. */
const TX_BUFFER_STRIDE = 0x600;

export class Enc28j60Nic implements Nic {
  readonly name: string;
  readonly mac: MacAddress;
  readonly mtu = 1500;
  readonly capabilities: NicCapabilities;
  /** Silicon revision found at start(), e.g. 'B7'. */
  revision: string | undefined;
  readonly events: Enc28j60Events = {};

  private readonly hal: Hal;
  private readonly clock: Clock;
  private readonly options: Enc28j60Options;
  private readonly txStart: number;
  private readonly ringSize: number;
  private readonly counters: NicStats = emptyNicStats();
  private handlers: NicHandlers | undefined;

  private readonly bank = new BankTracker();
  private seq = 0;
  private running = false;
  private up = false;

  // Work flags.
  private pumping = false;
  private rekick = false;
  private needsInit = false;
  private initNotBefore = 0;
  private errorBackoff: number;
  private paused = false;
  private interruptPending = false;
  private pollPending = false;
  private linkCheckPending = false;
  private rxResetPending = false;
  private filterDirty = false;
  /** EIE.INTIE was cleared by a service and must be set again when it is done. */
  private intieCleared = false;
  /** EIR flags seen and not yet cleared. */
  private eirToClear = 0;
  private inFlightBatches = 0;
  /** A receive-chain batch (service or ring read) is out: the next one is built from its answer. */
  private rxBatchOut = false;
  /** Result handlers are running (see step()). */
  private handling = false;
  /** Transmit-chain batches out (sends, completion checks): two sends at most, four with board-side delays. */
  private txBatchesOut = 0;
  /** Of those, completion checks (EIR reads only). */
  private txChecksOut = 0;
  /** Set by planTransmit(): the handler it returned is a completion check. */
  private plannedCheck = false;
  /** Bumped when the chip is re-initialised or its ring reset: answers from before are stale. */
  private epoch = 0;
  /** Receive is the board's program (options.rxProgram on a HAL with SpiDevice.arm). */
  private programArmed = false;
  /** Program mode: ring space taken by runs is to be released (ERXRDPT) with the next batch. */
  private releaseDue = false;

  // Receive ring model.
  /** Start of the oldest packet in the ring not yet taken. */
  private nextPacket = 0;
  /** ERDPT as it will be after every batch built so far (AUTOINC wraps it within the ring). */
  private erdpt = 0;
  /** Bytes from `nextPacket` on already read: the start of a packet that did not fit. */
  private readAhead = EMPTY;
  /** The header at the start of `readAhead`, once it has been read whole. */
  private header: RxHeader | undefined;
  /** ERXWRPT at the last ring read (where complete packets end), if it looked sane. */
  private rxWritePointer: number | undefined;
  /** Complete packets from `nextPacket` on, by the last EPKTCNT read. */
  private knownPending = 0;
  /** Packets taken whose PKTDEC is still to be sent (with the next batch). */
  private pendingDecrements = 0;
  /** Ring bytes taken but not yet released by moving ERXRDPT. */
  private unreleased = 0;

  // Transmit.
  private readonly txQueue: TxItem[] = [];
  /** The frame sent last, until it is known to be done. */
  private txInFlight: TxInFlight | undefined;
  /** Frames sent whose outcome is not known yet (at most two: the one on the wire, the next). */
  private readonly txUnresolved: TxInFlight[] = [];
  /** The transmit buffer written last, and whether its frame is known to be off the wire. */
  private txLastBuffer = 0;
  private txLastSent = false;
  /** ETXSTH as last written (initialisation points ETXST at the first buffer). */
  private txStartHigh = -1;
  private multicastJoined = 0;

  private pollTimer: TimerHandle | undefined;
  private wakeTimer: TimerHandle | undefined;
  private wakeAt = Infinity;
  private unsubscribers: (() => void)[] = [];

  constructor(config: Enc28j60NicConfig) {
    this.hal = config.hal;
    this.clock = config.clock;
    this.mac = Uint8Array.from(config.mac);
    this.name = config.name ?? `enc28j60-${formatMac(this.mac)}`;
    this.options = { ...ENC28J60_DEFAULTS, ...config.options };
    const rxEnd = this.options.rxEnd;
    if ((rxEnd & 1) === 0) throw new RangeError('rxEnd must be odd (ENC28J60 errata #14)');
    this.ringSize = rxEnd + 1;
    this.txStart = rxEnd + 1;
    // Each frame in the ring: its 6-byte receive status vector before it, FCS, pad to even.
    this.capabilities = { maxFrameSize: 1514, multicastFilter: false, rxCrcCheck: true, receiveBuffer: { bytes: this.ringSize, frameOverhead: 6 + 4 + 1 } };
    const txBuffers = this.options.txBuffers;
    if (txBuffers !== 1 && txBuffers !== 2) throw new RangeError('txBuffers must be 1 or 2');
    if (0x2000 - this.txStart < (txBuffers - 1) * TX_BUFFER_STRIDE + TX_BUFFER_BYTES) {
      throw new RangeError(`rxEnd leaves no room for ${txBuffers} full TX frame${txBuffers > 1 ? 's' : ''} + TSV`);
    }
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

  // ---- Start / stop ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    await this.initialise();
    this.running = true;
    this.unsubscribers.push(
      this.hal.interrupt.onChange((asserted) => {
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
    this.schedulePoll();
    if (this.hal.interrupt.asserted) this.interruptPending = true;
    this.kick();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.pollTimer?.cancel();
    this.wakeTimer?.cancel();
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    try {
      await this.disarmProgram();
      const batch = this.newBatch();
      batch.write(R.EIE, 0);
      batch.bitClear(R.ECON1, R.ECON1_RXEN);
      await this.hal.spi.transfer(batch.finish());
    } catch {
      // Best effort: the chip may already be gone.
    }
    for (const _item of this.txQueue.splice(0)) countDrop(this.counters.drops, 'stopped');
    this.txUnresolved.length = 0;
    this.txInFlight = undefined;
    this.setLink(false);
  }

  // ---- Transmit API ---------------------------------------------------------------------------

  transmit(frame: Uint8Array): boolean {
    if (frame.length < 14 || frame.length > this.capabilities.maxFrameSize) {
      countDrop(this.counters.drops, 'bad-length');
      return false;
    }
    if (!this.running || !this.up) {
      countDrop(this.counters.drops, 'link-down');
      return false;
    }
    if (this.txQueue.length >= this.options.txQueueLimit) {
      countDrop(this.counters.drops, 'tx-queue-full');
      return false;
    }
    this.txQueue.push({ frame, retries: 0 });
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

  // ---- Initialisation (DS-ENC §6, chips.md §1.11) ---------------------------------------------

  private async initialise(): Promise<void> {
    const o = this.options;
    this.epoch++;
    await this.disarmProgram();
    CommandBatch.invalidate(this.bank);
    this.requeueInFlight();

    // After a RESET pulse or power-up (possibly underneath us) the chip ignores every command but
    // an ESTAT read until its oscillator has started (DS-ENC §2.2, 300 µs): wait for CLKRDY.
    let batch: CommandBatch;
    for (let attempt = 0; attempt < o.clockReadyAttempts; attempt++) {
      batch = this.newBatch();
      const estatAt = batch.read(R.ESTAT);
      const estat = (await this.hal.spi.transfer(batch.finish()))[estatAt]!;
      if (estat & R.ESTAT_CLKRDY) break;
      await this.hal.delay(0.3);
    }

    // Errata #19: SRC is ignored in power-save mode; leave it (and wait 300 µs) first.
    batch = this.newBatch();
    const econ2Before = batch.read(R.ECON2);
    batch.bitClear(R.ECON2, R.ECON2_PWRSV);
    let r = await this.hal.spi.transfer(batch.finish());
    if (r[econ2Before]! & R.ECON2_PWRSV && r[econ2Before] !== 0xff) await this.hal.delay(0.3);

    batch = this.newBatch();
    batch.softReset();
    await this.hal.spi.transfer(batch.finish());
    await this.hal.delay(o.resetDelayMs); // errata #2: CLKRDY is set early after SRC

    batch = this.newBatch();
    const estatAt = batch.read(R.ESTAT);
    const econ2At = batch.read(R.ECON2);
    const revAt = batch.read(R.EREVID);
    r = await this.hal.spi.transfer(batch.finish());
    this.verifyChip(r[estatAt]!, r[econ2At]!, r[revAt]!);

    batch = this.newBatch();
    batch.write(R.ECON1, 0);
    batch.write(R.ECON2, R.ECON2_AUTOINC | R.ECON2_VRPS); // VRPS doubles as the reset sentinel
    batch.write16(R.ERXSTL, 0); // errata #5: the RX buffer starts at 0
    batch.write16(R.ERXNDL, o.rxEnd);
    batch.write16(R.ERXRDPTL, o.rxEnd); // errata #14: odd
    batch.write16(R.ERDPTL, 0);
    batch.write16(R.ETXSTL, this.txStart);
    this.txStartHigh = this.txStart >> 8;
    batch.write16(R.ETXNDL, this.txStart);
    batch.write(R.ERXFCON, this.receiveFilter());
    batch.write(R.MACON1, R.MACON1_MARXEN | (o.fullDuplex ? R.MACON1_TXPAUS | R.MACON1_RXPAUS : 0));
    batch.write(R.MACON3, R.MACON3_PADCFG0 | R.MACON3_TXCRCEN | R.MACON3_FRMLNEN | (o.fullDuplex ? R.MACON3_FULDPX : 0));
    batch.write(R.MACON4, o.fullDuplex ? 0 : R.MACON4_DEFER);
    batch.write(R.MABBIPG, o.fullDuplex ? 0x15 : 0x12);
    batch.write(R.MAIPGL, 0x12);
    batch.write(R.MAIPGH, o.fullDuplex ? 0x00 : 0x0c);
    batch.write16(R.MAMXFLL, o.maxFrameLength);
    R.MAADR_BY_OCTET.forEach((register, octet) => batch.write(register, this.mac[octet]!));
    this.phyWrite(batch, R.PHCON1, o.fullDuplex ? R.PHCON1_PDPXMD : 0);
    await this.hal.spi.transfer(batch.finish());
    await this.hal.delay(o.miiDelayMs);

    // Errata #9: half-duplex loopback is unreliable; HDLDIS stops the PHY looping our frames back.
    for (const [register, value] of [
      [R.PHCON2, o.fullDuplex ? 0 : R.PHCON2_HDLDIS],
      [R.PHLCON, o.phyLedConfig],
      [R.PHIE, R.PHIE_PGEIE | R.PHIE_PLNKIE],
    ] as const) {
      batch = this.newBatch();
      this.phyWrite(batch, register, value);
      await this.hal.spi.transfer(batch.finish());
      await this.hal.delay(o.miiDelayMs);
    }

    // Read back what must have stuck, and the PHY state (PHIR read clears a stale LINKIF).
    batch = this.newBatch();
    const maadrAt = R.MAADR_BY_OCTET.map((register) => batch.read(register));
    const erxndAt = [batch.read(R.ERXNDL), batch.read(R.ERXNDH)];
    batch.write(R.MIREGADR, R.PHIR);
    batch.write(R.MICMD, R.MICMD_MIIRD);
    r = await this.hal.spi.transfer(batch.finish());
    const readBackMac = maadrAt.map((at) => r[at]!);
    const readBackEnd = r[erxndAt[0]!]! | (r[erxndAt[1]!]! << 8);
    if (readBackMac.some((b, i) => b !== this.mac[i]) || readBackEnd !== o.rxEnd) {
      throw new Enc28j60Error(
        'EIO',
        `ENC28J60 register writes do not stick (MAADR read back ${formatMac(Uint8Array.from(readBackMac))}, ` +
          `ERXND 0x${readBackEnd.toString(16)}): check SPI MOSI/SCK wiring and the CS hold time`,
      );
    }
    await this.hal.delay(o.miiDelayMs);
    const phstat2 = await this.finishPhyReadAndRead(R.PHSTAT2);

    // Receive state and enable (chips.md §1.11 step 13). PKTIF is unreliable (errata #6) but still
    // raises INT; EPKTCNT is what the service reads. TX completion is polled, not interrupted.
    this.resetRingModel();
    this.intieCleared = false;
    this.eirToClear = 0;
    this.rxResetPending = false;
    this.filterDirty = false;
    this.releaseDue = false;
    const useProgram = this.programPossible();
    if (useProgram) this.bank.home = 0;
    batch = this.newBatch();
    batch.bitClear(R.EIR, R.EIR_DMAIF | R.EIR_TXIF | R.EIR_TXERIF | R.EIR_RXERIF);
    batch.write(R.EIE, R.EIE_INTIE | R.EIE_PKTIE | R.EIE_LINKIE | R.EIE_RXERIE);
    batch.bitSet(R.ECON1, R.ECON1_RXEN);
    await this.hal.spi.transfer(batch.finish());
    if (useProgram) await this.armProgram();
    this.needsInit = false;
    this.errorBackoff = this.options.errorBackoffMs;
    this.setLink((phstat2 & R.PHSTAT2_LSTAT) !== 0);
  }

  private verifyChip(estat: number, econ2: number, revid: number): void {
    const all = [estat, econ2, revid];
    if (all.every((b) => b === 0x00) || all.every((b) => b === 0xff)) {
      throw new Enc28j60Error(
        'ENODEV',
        `no ENC28J60 answering on SPI (ESTAT/ECON2/EREVID all read 0x${estat.toString(16).padStart(2, '0')}): ` +
          'MISO is floating or stuck — check wiring, chip select, power and the reset line',
      );
    }
    const revision = R.KNOWN_REVISIONS.get(revid);
    if (!revision || econ2 !== R.ECON2_AUTOINC) {
      throw new Enc28j60Error(
        'ENODEV',
        `the SPI device is not an ENC28J60 after reset (EREVID 0x${revid.toString(16)}, ECON2 0x${econ2.toString(16)}; ` +
          'expected EREVID 0x02/0x04/0x05/0x06 and ECON2 0x80) — wrong chip or wrong chip select?',
      );
    }
    this.revision = revision;
  }

  private receiveFilter(): number {
    return R.ERXFCON_UCEN | R.ERXFCON_CRCEN | R.ERXFCON_BCEN | (this.multicastJoined > 0 ? R.ERXFCON_MCEN : 0);
  }

  /** MIREGADR, then MIWRL, MIWRH (writing MIWRH starts it; BUSY for 10.24 µs, DS-ENC §3.3.2). */
  private phyWrite(batch: CommandBatch, register: number, value: number): void {
    batch.write(R.MIREGADR, register);
    batch.write16(R.MIWRL, value);
  }

  /** Finish an MII read started in the previous batch and start (and finish) a read of `next`. */
  private async finishPhyReadAndRead(next: number): Promise<number> {
    let batch = this.newBatch();
    batch.write(R.MICMD, 0);
    batch.read(R.MIRDL);
    batch.read(R.MIRDH);
    batch.write(R.MIREGADR, next);
    batch.write(R.MICMD, R.MICMD_MIIRD);
    await this.hal.spi.transfer(batch.finish());
    await this.hal.delay(this.options.miiDelayMs);
    batch = this.newBatch();
    batch.write(R.MICMD, 0);
    const lowAt = batch.read(R.MIRDL);
    const highAt = batch.read(R.MIRDH);
    const r = await this.hal.spi.transfer(batch.finish());
    return r[lowAt]! | (r[highAt]! << 8);
  }

  // ---- The work loop --------------------------------------------------------------------------

  private kick(): void {
    if (this.handling) return; // the handlers' caller kicks when they are done
    if (this.pumping) {
      this.rekick = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        this.rekick = false;
        let didWork: boolean;
        try {
          didWork = await this.step();
        } catch (error) {
          this.onError(error);
          didWork = false;
        }
        if (!didWork && !this.rekick) return;
      }
    } finally {
      // Cleared in the same turn the loop ends: a kick() in any later microtask starts a new pump
      // (a `.finally()` on the caller's side ran a turn later, and a kick in between was lost).
      this.pumping = false;
    }
  }

  /** Build and run one batch of whatever is due. False when there is nothing to do now. */
  private async step(): Promise<boolean> {
    if (!this.running || this.paused) return false;
    // The sequences below wait on their own answers; they start once every batch is back (each
    // answer kicks the pump again).
    if ((this.needsInit || this.rxResetPending || this.linkCheckPending) && this.inFlightBatches > 0) return false;
    if (this.needsInit) {
      if (this.clock.now() < this.initNotBefore) {
        this.wakeAtTime(this.initNotBefore);
        return false;
      }
      await this.initialise();
      this.interruptPending = true; // whatever arrived meanwhile
      return true;
    }
    if (this.rxResetPending) {
      await this.resetReceiver();
      return true;
    }
    if (this.linkCheckPending) {
      await this.checkLink();
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
      if (this.filterDirty) {
        batch.write(R.ERXFCON, this.receiveFilter());
        this.filterDirty = false;
      }
      if (this.pollPending && !this.rxBatchOut) {
        handlers.push(this.planProgramPoll(batch, seq));
        readsEir = true;
        receives = true;
        runAfter = true;
      }
      endProgramService = (this.releaseDue && this.unreleased > 0) || this.eirToClear !== 0;
    } else if (!this.rxBatchOut) {
      if (this.filterDirty) {
        batch.write(R.ERXFCON, this.receiveFilter());
        this.filterDirty = false;
      }
      if (this.knownPending > 0) {
        handlers.push(this.planReceive(batch));
        receives = true;
      } else if (this.interruptPending || this.pollPending) {
        handlers.push(this.planService(batch, seq));
        readsEir = true;
        receives = true;
      } else if (this.pendingDecrements > 0 || this.unreleased > 0 || this.intieCleared || this.eirToClear) {
        endService = true;
      }
    }
    // Program mode: the ring is released in the same batch as a transmission, before TXRTS (the
    // frame sent may be the ACK for what the runs took, and the peer's next segments must find the
    // space free) but not in front of the frame's register writes when those go first: the
    // release then goes with them, ahead of the frame bytes, so the batch still ends in TXRTS and
    // the board starts the frame as soon as its last byte is in.
    let serviceEnd = endProgramService ? () => this.appendProgramServiceEnd(batch) : undefined;
    const tx = this.planTransmit(batch, seq, readsEir, () => {
      serviceEnd?.();
      serviceEnd = undefined;
    });
    serviceEnd?.();
    if (tx) handlers.push(tx);
    const txCheck = tx !== undefined && this.plannedCheck;
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
    if (tx) this.txBatchesOut++;
    if (txCheck) this.txChecksOut++;
    this.inFlightBatches++;
    const settle = () => {
      this.inFlightBatches--;
      if (receives) this.rxBatchOut = false;
      if (tx) this.txBatchesOut--;
      if (txCheck) this.txChecksOut--;
    };
    this.hal.spi.transfer(batch.finish()).then(
      (result) => {
        settle();
        if (epoch === this.epoch) {
          // A handler hands frames to the stack, which may transmit (and kick) at once: no batch
          // may be built from the half-updated ring model meanwhile.
          this.handling = true;
          try {
            for (const handle of handlers) handle(result);
          } catch (error) {
            this.onError(error);
          } finally {
            this.handling = false;
          }
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
    if (runAfter) {
      this.hal.spi.runArmed?.().catch((error: unknown) => {
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
   * says how many of them are valid. A frame that fits is delivered from this batch alone.
   */
  private planService(batch: CommandBatch, seq: number): ResultHandler {
    const fromInterrupt = this.interruptPending || this.hal.interrupt.asserted;
    this.interruptPending = false;
    this.pollPending = false;
    // Bank 0 work first (ERDPT, ERXRDPT), so the batch ends in bank 1 where reads continue (EPKTCNT).
    this.prepareRingRead(batch, this.nextPacket);
    if (fromInterrupt && !this.intieCleared) {
      batch.bitClear(R.EIE, R.EIE_INTIE);
      this.intieCleared = true;
    }
    const flags = this.planFlagsRead(batch, seq);
    // The poll usually finds nothing: it reads the header only and leaves the link quiet.
    const read = this.readRing(batch, this.nextPacket, 6 + (fromInterrupt ? this.options.rxReadAheadBytes : 0));
    return (r) => {
      if (!flags(r)) return;
      read.noteWritePointer(r);
      this.absorb(read.data(r), r[read.countAt]!);
    };
  }

  /**
   * Continue reading the packet at `nextPacket` where the last read stopped. When its header is
   * known the read finishes it (frame + FCS + pad), so the same batch decrements EPKTCNT and, when
   * it is the last packet known, releases the ring and ends the service; the read goes on past it
   * speculatively: the next header, and `rxReadAheadBytes` more when another packet is known to wait.
   */
  private planReceive(batch: CommandBatch): ResultHandler {
    const held = this.readAhead;
    const start = this.ringAdvance(this.nextPacket, held.length);
    const header = this.header;
    const more = this.knownPending >= 2;
    const lookahead = 6 + (more ? this.options.rxReadAheadBytes : 0);
    this.prepareRingRead(batch, start);
    if (!header) {
      // Only part of the header arrived with the last read.
      const read = this.readRing(batch, start, Math.max(6 - held.length + this.options.rxReadAheadBytes, this.bytesCompleteFrom(start)), true);
      return (r) => {
        const count = r[read.countAt]!;
        read.noteWritePointer(r);
        if (count === 0) this.lostPackets();
        else this.absorb(read.data(r), count);
      };
    }
    const size = 6 + header.byteCount + (header.byteCount & 1);
    const rest = size - held.length;
    // Every packet the chip had completed when the last batch read ERXWRPT comes in this one read
    // (then the next header, to know whether another completed meanwhile): past the first
    // two, a burst of frames costs one round trip, not one each. (The interrupt service does not
    // read ERXWRPT: an isolated frame would pay for it.)
    const complete = more ? this.bytesCompleteFrom(start) : 0;
    const read = this.readRing(batch, start, Math.max(rest + lookahead, complete > rest ? complete + 6 : 0), more);
    batch.bitSet(R.ECON2, R.ECON2_PKTDEC);
    this.nextPacket = header.next;
    this.unreleased += size;
    this.readAhead = EMPTY;
    this.header = undefined;
    this.knownPending--;
    if (!more) this.appendServiceEnd(batch);
    else if (this.unreleased >= this.ringSize * this.options.rxReleaseFraction) this.releaseRing(batch);
    return (r) => {
      const count = r[read.countAt]!;
      read.noteWritePointer(r);
      if (count === 0) {
        this.lostPackets();
        return;
      }
      const data = read.data(r);
      const frame = concat(held.subarray(6), data.subarray(0, rest)).subarray(0, header.byteCount - 4);
      this.take(header, frame);
      this.absorb(data.subarray(rest), count - 1);
    };
  }

  /** Before a ring read: point ERDPT at `start`, release the ring if due, PKTDEC what was taken. */
  private prepareRingRead(batch: CommandBatch, start: number): void {
    if (this.erdpt !== start) batch.write16(R.ERDPTL, start);
    if (this.unreleased >= this.ringSize * this.options.rxReleaseFraction) this.releaseRing(batch);
    this.decrementTaken(batch);
  }

  /**
   * EPKTCNT, then an RBM of `length` bytes from ERDPT (= `start`). The chip finished writing every
   * packet EPKTCNT counts before the RBM began, so those packets' bytes in the read are valid.
   */
  private readRing(batch: CommandBatch, start: number, length: number, withWritePointer = false) {
    // ERXWRPT first (still in bank 0), when more packets wait: where the chip's complete packets
    // end, for sizing the next read. It is two reads, so a packet completing between them can
    // tear it; it is never trusted for validity, which EPKTCNT (one register) decides.
    const writeLowAt = withWritePointer ? batch.read(R.ERXWRPTL) : -1;
    const writeHighAt = withWritePointer ? batch.read(R.ERXWRPTH) : -1;
    const countAt = batch.read(R.EPKTCNT);
    const dataAt = batch.readBuffer(length);
    this.erdpt = this.ringAdvance(start, length);
    return {
      countAt,
      data: (r: Uint8Array) => r.subarray(dataAt, dataAt + length),
      noteWritePointer: (r: Uint8Array) => {
        if (!withWritePointer) {
          this.rxWritePointer = undefined;
          return;
        }
        const pointer = r[writeLowAt]! | (r[writeHighAt]! << 8);
        this.rxWritePointer = pointer < this.ringSize ? pointer : undefined;
      },
    };
  }

  /**
   * Ring bytes read from where `readAhead` ends; `count` packets from `nextPacket` on are complete.
   * Every complete packet among them is taken (its PKTDEC and ring release go with the next
   * batch); what is held of a partial one waits for the next read; bytes past the last counted
   * packet are not trusted.
   */
  private absorb(bytes: Uint8Array, count: number): void {
    const buffer = concat(this.readAhead, bytes);
    let at = 0;
    let taken = 0;
    this.header = undefined;
    while (taken < count && buffer.length - at >= 6) {
      const header = this.parseHeader(buffer, at);
      if (!header) {
        this.readAhead = EMPTY;
        this.knownPending = 0;
        return;
      }
      const size = 6 + header.byteCount + (header.byteCount & 1);
      if (at + size > buffer.length) {
        this.header = header;
        break;
      }
      this.take(header, buffer.subarray(at + 6, at + 6 + header.byteCount - 4));
      this.pendingDecrements++;
      this.unreleased += size;
      this.nextPacket = header.next;
      at += size;
      taken++;
    }
    this.knownPending = count - taken;
    this.readAhead = this.knownPending > 0 ? buffer.slice(at) : EMPTY;
  }

  /** Ring bytes from `start` to the last ERXWRPT seen: complete packets (0 when unknown). */
  private bytesCompleteFrom(start: number): number {
    const pointer = this.rxWritePointer;
    if (pointer === undefined) return 0;
    return (pointer - start + this.ringSize) % this.ringSize;
  }

  /** A read found EPKTCNT at 0 where we knew of packets: a reset underneath or lost state. */
  private lostPackets(): void {
    this.knownPending = 0;
    this.readAhead = EMPTY;
    this.header = undefined;
    this.pollPending = true;
  }

  /** Hand a received frame (without its FCS) to the stack, or count why not. */
  private take(header: RxHeader, frame: Uint8Array): void {
    if (header.status & R.RSV_RECEIVED_OK) {
      this.counters.rxFrames++;
      this.counters.rxBytes += frame.length;
      this.deliver(frame);
    } else {
      countDrop(this.counters.drops, 'rx-bad-frame');
    }
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

  /** One PKTDEC per packet taken since the last batch (DS-ENC §7.2.4). */
  private decrementTaken(batch: CommandBatch): void {
    for (; this.pendingDecrements > 0; this.pendingDecrements--) batch.bitSet(R.ECON2, R.ECON2_PKTDEC);
  }

  /** ERXRDPT just behind `nextPacket`: odd, since packets start even (errata #14). */
  private releaseRing(batch: CommandBatch): void {
    batch.write16(R.ERXRDPTL, this.nextPacket === 0 ? this.options.rxEnd : this.nextPacket - 1);
    this.unreleased = 0;
  }

  /**
   * Decrement and release what was taken, clear the flags we saw and set INTIE again: the
   * datasheet's end of interrupt service. ERDPT goes back to `nextPacket` here, off the path of
   * the next service (which would otherwise rewind it first).
   */
  private appendServiceEnd(batch: CommandBatch): void {
    this.decrementTaken(batch);
    if (this.unreleased > 0) this.releaseRing(batch);
    if (this.erdpt !== this.nextPacket) {
      batch.write16(R.ERDPTL, this.nextPacket);
      this.erdpt = this.nextPacket;
    }
    if (this.eirToClear) {
      batch.bitClear(R.EIR, this.eirToClear);
      this.eirToClear = 0;
    }
    if (this.intieCleared) {
      batch.bitSet(R.EIE, R.EIE_INTIE);
      this.intieCleared = false;
    }
  }

  /** Validate a packet header at `nextPacket`; a bad one means the ring is corrupt (chips.md §3.1). */
  private parseHeader(r: Uint8Array, at: number): RxHeader | undefined {
    const next = r[at]! | (r[at + 1]! << 8);
    const byteCount = r[at + 2]! | (r[at + 3]! << 8);
    const status = r[at + 4]! | (r[at + 5]! << 8);
    const expected = this.ringAdvance(this.nextPacket, 6 + byteCount + (byteCount & 1));
    const sane = byteCount >= 18 && byteCount <= this.options.maxFrameLength && next === expected && next <= this.options.rxEnd;
    if (!sane) {
      countDrop(this.counters.drops, 'rx-ring-corrupt');
      this.rxResetPending = true;
      return undefined;
    }
    return { next, byteCount, status };
  }

  /** LNX-ENC's recovery for a corrupt ring: RXRST, re-initialise the ring, re-enable. */
  private async resetReceiver(): Promise<void> {
    this.count('rx-reset');
    this.epoch++;
    // The program moves ERDPT by itself: it must be gone before the ring is reset under it.
    const rearm = this.programArmed;
    await this.disarmProgram();
    let batch = this.newBatch();
    batch.bitClear(R.ECON1, R.ECON1_RXEN);
    batch.bitSet(R.ECON1, R.ECON1_RXRST);
    batch.bitClear(R.ECON1, R.ECON1_RXRST);
    batch.write16(R.ERXSTL, 0);
    batch.write16(R.ERXNDL, this.options.rxEnd);
    batch.write16(R.ERXRDPTL, this.options.rxEnd);
    batch.write16(R.ERDPTL, 0);
    const countAt = batch.read(R.EPKTCNT);
    const r = await this.hal.spi.transfer(batch.finish());
    if (rearm) this.bank.home = 0;
    batch = this.newBatch();
    // If RXRST left EPKTCNT standing, decrement it to 0 while reception is still off.
    for (let i = 0; i < r[countAt]!; i++) batch.bitSet(R.ECON2, R.ECON2_PKTDEC);
    batch.bitClear(R.EIR, R.EIR_RXERIF);
    batch.bitSet(R.ECON1, R.ECON1_RXEN);
    await this.hal.spi.transfer(batch.finish());
    this.rxResetPending = false;
    this.resetRingModel();
    this.releaseDue = false;
    if (rearm) await this.armProgram();
    this.pollPending = true;
  }

  // ---- Receive by program (docs/bridge-protocol.md §3.2) ----------------------------------------

  private programPossible(): boolean {
    return this.options.rxProgram && this.hal.spi.arm !== undefined;
  }

  /**
   * What the board runs when INT falls (and again while packets wait): 35 bytes with the bridge's
   * short headers. It reads EPKTCNT (bank 1) and comes back to bank 0, then stops unless a packet
   * waits; else it reads ERDPT (where the packet starts: a run whose answer was lost on the link
   * shows as a gap), the 6-byte header and then exactly the byte count the header gives, rounded
   * up to even, so ERDPT ends on the next packet (AUTOINC wraps it in the ring), and PKTDEC. The
   * driver releases the ring (ERXRDPT) itself: that write depends on the header.
   */
  private receiveProgram(): SpiTransaction[] {
    const cap = this.options.maxFrameLength + (this.options.maxFrameLength & 1);
    const op = (opcode: number, register: number, ...rest: number[]) => Uint8Array.of(opcode | (register & 0x1f), ...rest);
    return [
      { write: op(R.OP_RCR, R.EIR), read: 1 }, // byte 0
      { write: op(R.OP_BFS, R.ECON1, 0x01) }, // bank 0 → 1
      { write: op(R.OP_RCR, R.EPKTCNT), read: 1 }, // byte 1
      { write: op(R.OP_BFC, R.ECON1, R.ECON1_BSEL) }, // → bank 0
      { write: op(R.OP_RCR, R.ERDPTL), read: 1, ifNonZero: 1 }, // bytes 2, 3; stop if EPKTCNT = 0
      { write: op(R.OP_RCR, R.ERDPTH), read: 1 },
      { write: Uint8Array.of(R.OP_RBM), read: 6, keepSelected: true }, // bytes 4..9
      { read: cap, readLengthFrom: { at: 6, even: true } }, // frame + FCS + pad
      { write: op(R.OP_BFS, R.ECON2, R.ECON2_PKTDEC) },
    ];
  }

  /** Leave the receive program on the board; on a board that cannot run it, stay with batches. */
  private async armProgram(): Promise<void> {
    const epoch = this.epoch;
    // Runs may be reported before arm() resolves (the first one follows its answer at once).
    this.programArmed = true;
    try {
      await this.hal.spi.arm!(this.receiveProgram(), (result) => this.onProgramRun(result, epoch), { quietInterrupts: true });
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
    this.handling = true;
    try {
      this.absorbRun(result);
    } catch (error) {
      this.onError(error);
    } finally {
      this.handling = false;
    }
    this.kick();
  }

  /** One run's bytes: EIR, EPKTCNT and, when a packet waited, ERDPT, its header and its frame. */
  private absorbRun(r: Uint8Array): void {
    if (r.length < 2) {
      this.count('rx-run-malformed');
      return;
    }
    this.noteFlags(r[0]!);
    // A run answered after the latest send's answer ran after it on the board: its EIR tells how
    // that transmission went, when it has finished (TXIF or TXERIF; else it is still going).
    const tx = this.txInFlight;
    if (tx && !tx.resolved && tx.startedBy !== undefined) this.resolveTx(tx, r[0]!, 'observed');
    if (r[1] === 0) return; // nothing waited: the run stopped at its IF
    const start = r.length >= 4 ? r[2]! | (r[3]! << 8) : -1;
    const header = r.length >= 10 ? { next: r[4]! | (r[5]! << 8), byteCount: r[6]! | (r[7]! << 8), status: r[8]! | (r[9]! << 8) } : undefined;
    const size = header ? 6 + header.byteCount + (header.byteCount & 1) : 0;
    const sane =
      header !== undefined &&
      start >= 0 &&
      start <= this.options.rxEnd &&
      (start & 1) === 0 &&
      header.byteCount >= 18 &&
      header.byteCount <= this.options.maxFrameLength &&
      header.next === this.ringAdvance(start, size) &&
      r.length === 4 + size;
    if (!sane) {
      // ERDPT is wherever the capped read left it: only a reset of the receiver recovers.
      countDrop(this.counters.drops, 'rx-ring-corrupt');
      this.epoch++;
      this.rxResetPending = true;
      return;
    }
    // A run answer lost on the link (CRC) took its frame with it: the board had read it and
    // decremented EPKTCNT. The ring is still consistent; the frame is a drop like any other.
    if (start !== this.nextPacket) countDrop(this.counters.drops, 'rx-run-lost');
    this.take(header, r.subarray(10, 10 + header.byteCount - 4));
    this.unreleased += (header.next - this.nextPacket + this.ringSize) % this.ringSize;
    this.nextPacket = header.next;
    this.erdpt = header.next;
    // Release at the end of a burst (EPKTCNT was 1), or when a share of the ring is held.
    if (r[1] === 1 || this.unreleased >= this.ringSize * this.options.rxReleaseFraction) this.releaseDue = true;
  }

  /** EIR's receive-error and link flags (TX completion is the transmit chain's business). */
  private noteFlags(eir: number): void {
    if (eir & R.EIR_RXERIF && !(this.eirToClear & R.EIR_RXERIF)) {
      // Ring full or EPKTCNT at 255: the chip dropped a frame (DS-ENC §12.1.2). The ring itself
      // is intact, so draining is the recovery. Counted once until the flag is cleared.
      countDrop(this.counters.drops, 'rx-overflow');
      this.eirToClear |= R.EIR_RXERIF;
    }
    if (eir & R.EIR_LINKIF) this.linkCheckPending = true;
  }

  /** The safety-net poll in program mode: the reset sentinel and EIR; the program runs right after. */
  private planProgramPoll(batch: CommandBatch, seq: number): ResultHandler {
    this.pollPending = false;
    const flags = this.planFlagsRead(batch, seq);
    return (r) => void flags(r);
  }

  /**
   * EIR and ECON2 (the reset sentinel) in `batch`; the returned check, given the answer, notes
   * what EIR says (a transmission seen done, RXERIF, LINKIF) and returns false if the chip was
   * reset underneath (SRC or power loss: ECON2 back to its reset value; re-initialisation is due).
   */
  private planFlagsRead(batch: CommandBatch, seq: number): (r: Uint8Array) => boolean {
    const eirAt = batch.read(R.EIR);
    const econ2At = batch.read(R.ECON2);
    const txAtBuild = this.txInFlight;
    return (r) => {
      if (r[econ2At] !== (R.ECON2_AUTOINC | R.ECON2_VRPS)) {
        this.scheduleReinit('chip-reset');
        return false;
      }
      const eir = r[eirAt]!;
      if (txAtBuild && txAtBuild.seq < seq) this.resolveTx(txAtBuild, eir, 'observed');
      this.noteFlags(eir);
      return true;
    };
  }

  /** Release what the runs took and clear the flags seen (ERDPT belongs to the program). */
  private appendProgramServiceEnd(batch: CommandBatch): void {
    if (this.releaseDue && this.unreleased > 0) this.releaseRing(batch);
    this.releaseDue = false;
    if (this.eirToClear) {
      batch.bitClear(R.EIR, this.eirToClear);
      this.eirToClear = 0;
    }
  }

  /** The ring as RXRST or SRC leaves it: empty, ERDPT at 0, EPKTCNT 0. */
  private resetRingModel(): void {
    this.rxWritePointer = undefined;
    this.nextPacket = 0;
    this.erdpt = 0;
    this.readAhead = EMPTY;
    this.header = undefined;
    this.knownPending = 0;
    this.pendingDecrements = 0;
    this.unreleased = 0;
  }

  private ringAdvance(pointer: number, bytes: number): number {
    return (pointer + bytes) % this.ringSize;
  }

  // ---- Transmit -------------------------------------------------------------------------------

  /** `beforeFrame`: writes that must precede a send's TXRTS; a send calls it where they cost least. */
  private planTransmit(batch: CommandBatch, seq: number, batchReadsEir: boolean, beforeFrame: () => void): ResultHandler | undefined {
    const now = this.clock.now();
    const previous = this.txInFlight;
    this.plannedCheck = false;
    if (this.txBatchesOut > 0) {
      // Only a completion check is out (its answer can sit behind a long run or read): a frame
      // to send need not wait for it once the previous one's wire time is over — the send reads
      // EIR before its TXRST anyway.
      if (this.txChecksOut === 1 && this.txBatchesOut === 1 && previous?.doneBy !== undefined && now >= previous.doneBy && this.txQueue.length > 0 && this.up) {
        return this.planSend(batch, seq, previous, beforeFrame);
      }
      // The previous send's batch is still out. With a second buffer the next frame can follow it
      // at once, if writing that frame to the chip takes longer than the previous one's time on
      // the wire: by the time this batch resets the transmitter, the previous frame is out.
      // Each send's TXRST waits for its predecessor's wire time, so the one before that is off
      // the wire when a send writes into its buffer: with board-side delays any number could
      // follow; four keep a 4 ms turnaround busy with small frames.
      const maxSendsOut = this.hal.spi.transactionDelays ? 4 : 2;
      if (!previous || previous.doneBy !== undefined || this.txBatchesOut >= maxSendsOut) return undefined;
      const delayUs = this.followDelayUs(previous);
      if (delayUs === undefined) return undefined;
      return this.planSend(batch, seq, previous, beforeFrame, delayUs);
    }
    const due = !previous || now >= previous.doneBy!;
    if (this.txQueue.length > 0 && this.up && due) return this.planSend(batch, seq, previous, beforeFrame);
    if (previous && due && !batchReadsEir && now >= this.checkAt(previous)) {
      this.plannedCheck = true;
      const eirAt = batch.read(R.EIR);
      return (r) => this.resolveTx(previous, r[eirAt]!, 'checked');
    }
    return undefined;
  }

  /**
   * May the next queued frame be sent behind `previous` before its batch is back? Only if its
   * TXRST certainly comes after `previous` is off the wire: writing the new frame takes that long
   * (the HAL's minWriteMs floor), or the board waits out the rest before the TXRST
   * (SpiTransaction.delayUs). The microseconds to wait (0: none), or undefined: it may not.
   */
  private followDelayUs(previous: TxInFlight): number | undefined {
    const next = this.txQueue[0];
    if (this.options.txBuffers < 2 || !next || !this.up) return undefined;
    const neededMs = frameWireTimeMs(previous.item.frame.length) + this.options.txFollowMarginMs;
    const writeMs = this.hal.spi.minWriteMs?.(next.frame.length) ?? 0;
    if (writeMs >= neededMs) return 0;
    if (!this.hal.spi.transactionDelays) return undefined;
    return Math.ceil((neededMs - writeMs) * 1000);
  }

  /**
   * DS-ENC §7.1 with errata #12: TXRST pulse, control byte + frame at ETXST, ETXND, clear
   * TXIF/TXERIF (clearing TXRST may set TXERIF), TXRTS. If the previous frame is not yet known to
   * be done, EIR is read just before the TXRST: by then (its wire time has passed) TXIF says how
   * it went, and "not done" means the reset cut it short. The frame is written after the
   * registers, just before TXRTS — unless, with two buffers, the previous frame may still be on
   * the wire: then it goes into the other buffer first, so the previous frame has the whole write
   * to finish in. `beforeFrame` (the ring release) goes ahead of the frame's bytes either way.
   */
  private planSend(batch: CommandBatch, seq: number, previous: TxInFlight | undefined, beforeFrame: () => void, delayUs = 0): ResultHandler {
    const item = this.txQueue.shift()!;
    // With two buffers: the one used last again if its frame is known to have gone (ETXST stays),
    // else the other — the last one may be on the wire, or stuck there (errata #12) until this
    // batch's TXRST; the one before it was released by the previous send's TXRST.
    const reuse = this.txUnresolved.length === 0 && this.txLastSent;
    const buffer = this.options.txBuffers === 2 ? (reuse ? this.txLastBuffer : 1 - this.txLastBuffer) : 0;
    this.txLastBuffer = buffer;
    this.txLastSent = false;
    const start = this.txStart + buffer * TX_BUFFER_STRIDE;
    const writeFrame = () => {
      batch.write16(R.EWRPTL, start);
      batch.writeBuffer([0x00], item.frame); // control byte 0: padding and CRC per MACON3
    };
    // The previous frame is off the wire by the time this batch runs (its wire time is over, no
    // board-side wait): everything but TXRTS goes before the frame, so the board starts the
    // transmission as soon as the frame's last byte is in — the register writes no longer follow
    // it (about 0.15 ms less from request to wire on the bridge). Otherwise the frame goes first,
    // giving the previous one the write's time to finish.
    const previousGone = delayUs === 0 && (!previous || (previous.doneBy !== undefined && this.clock.now() >= previous.doneBy));
    const frameFirst = this.options.txBuffers === 2 && !previousGone;
    if (frameFirst) writeFrame();
    else beforeFrame();
    if (delayUs > 0) batch.delay(delayUs); // the previous frame's wire time, left after the write
    const eirAt = previous ? batch.read(R.EIR) : -1;
    // TXRST before the buffer is overwritten (one buffer) or the start moves (two).
    batch.bitSet(R.ECON1, R.ECON1_TXRST);
    batch.bitClear(R.ECON1, R.ECON1_TXRST);
    // Both buffers start on a 256-byte boundary: ETXSTL stays as initialised.
    if (this.txStartHigh !== start >> 8) {
      batch.write(R.ETXSTH, start >> 8);
      this.txStartHigh = start >> 8;
    }
    batch.write16(R.ETXNDL, start + item.frame.length);
    batch.bitClear(R.EIR, R.EIR_TXIF | R.EIR_TXERIF);
    if (!frameFirst) writeFrame();
    else beforeFrame();
    batch.bitSet(R.ECON1, R.ECON1_TXRTS);
    const sending: TxInFlight = { item, seq, resolved: false };
    this.txInFlight = sending;
    this.txUnresolved.push(sending);
    return (r) => {
      if (previous) this.resolveTx(previous, r[eirAt]!, 'preempted');
      const now = this.clock.now();
      sending.startedBy = now;
      sending.doneBy = now + frameWireTimeMs(item.frame.length) + this.options.txCompletionSlackMs;
      this.armWakeTimer();
    };
  }

  /**
   * What EIR says about a transmission. `preempted`: read just before our TXRST for the next
   * frame, so "not done" means we cut it short and it must go again.
   */
  private resolveTx(tx: TxInFlight, eir: number, how: 'observed' | 'checked' | 'preempted'): void {
    if (tx.resolved) return;
    if (eir & R.EIR_TXERIF) {
      // Errata #13: a late collision (half duplex) aborts; retransmit like LNX-ENC.
      tx.resolved = true;
      this.retransmit(tx.item, 'tx-abort');
    } else if (eir & R.EIR_TXIF) {
      tx.resolved = true;
      if (tx === this.txInFlight) this.txLastSent = true;
      this.counters.txFrames++;
      this.counters.txBytes += tx.item.frame.length;
    } else if (how === 'preempted') {
      tx.resolved = true;
      this.retransmit(tx.item, 'tx-preempted');
    } else if (how === 'checked' && tx.startedBy !== undefined) {
      const elapsed = this.clock.now() - tx.startedBy;
      if (elapsed >= this.options.txTimeoutMs) {
        // Errata #12: the transmitter can stall with TXRTS set; the next send's TXRST clears it.
        tx.resolved = true;
        this.retransmit(tx.item, 'tx-timeout');
      } else {
        tx.doneBy = this.clock.now() + Math.min(Math.max(1, elapsed), this.options.txTimeoutMs - elapsed);
      }
    }
    if (tx.resolved) {
      const at = this.txUnresolved.indexOf(tx);
      if (at >= 0) this.txUnresolved.splice(at, 1);
      if (this.txInFlight === tx) this.txInFlight = undefined;
    }
    this.armWakeTimer();
  }

  private retransmit(item: TxItem, reason: string): void {
    this.count(reason);
    item.retries++;
    if (item.retries > this.options.txMaxRetries) {
      countDrop(this.counters.drops, reason);
      return;
    }
    this.txQueue.unshift(item);
  }

  /** Frames the chip may not have sent (re-initialisation): back to the head of the queue, in order. */
  private requeueInFlight(): void {
    for (const tx of this.txUnresolved) tx.resolved = true;
    this.txQueue.unshift(...this.txUnresolved.splice(0).map((tx) => tx.item));
    this.txInFlight = undefined;
  }

  // ---- Link -----------------------------------------------------------------------------------

  /** LINKIF: read PHIR (clears it, DS-ENC §12.1.5) and PHSTAT2.LSTAT. */
  private async checkLink(): Promise<void> {
    this.linkCheckPending = false;
    const batch = this.newBatch();
    batch.write(R.MIREGADR, R.PHIR);
    batch.write(R.MICMD, R.MICMD_MIIRD);
    await this.hal.spi.transfer(batch.finish());
    await this.hal.delay(this.options.miiDelayMs);
    const phstat2 = await this.finishPhyReadAndRead(R.PHSTAT2);
    this.setLink((phstat2 & R.PHSTAT2_LSTAT) !== 0);
  }

  private setLink(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (!up) for (const _ of this.txQueue.splice(0)) countDrop(this.counters.drops, 'link-down');
    this.count(up ? 'link-up' : 'link-down');
    this.handlers?.linkChange(up);
  }

  // ---- Timers and errors ----------------------------------------------------------------------

  private schedulePoll(): void {
    this.pollTimer = this.clock.schedule(this.options.pollIntervalMs, () => {
      if (!this.running) return;
      this.schedulePoll();
      if (this.rxBatchOut) return; // a service or ring read is out: it sees what a poll would
      // Safety net: a missed INT edge, or a chip reset underneath (interrupts silently off).
      this.pollPending = true;
      this.kick();
    });
  }

  private armWakeTimer(): void {
    if (this.txBatchesOut > 0) return; // their answers kick the pump
    const tx = this.txInFlight;
    // At its wire time's end when a send waits for it (it can go then), else when a check is due.
    if (tx?.doneBy !== undefined && !tx.resolved) this.wakeAtTime(this.txQueue.length > 0 ? tx.doneBy : this.checkAt(tx));
  }

  /** When a standalone completion check of `tx` is due (later with program runs: see txRunCheckDelayMs). */
  private checkAt(tx: TxInFlight): number {
    return tx.doneBy! + (this.programArmed ? this.options.txRunCheckDelayMs : 0);
  }

  private wakeAtTime(at: number): void {
    if (this.wakeTimer?.pending && this.wakeAt <= at) return;
    this.wakeTimer?.cancel();
    this.wakeAt = at;
    this.wakeTimer = this.clock.schedule(at - this.clock.now(), () => {
      this.wakeAt = Infinity;
      this.kick();
    });
  }

  private scheduleReinit(reason: string): void {
    this.count(reason);
    this.needsInit = true;
    this.knownPending = 0;
    this.kick();
  }

  private onError(error: unknown): void {
    // Nothing escapes the loop: a failed batch may or may not have run, so start over cleanly.
    CommandBatch.invalidate(this.bank);
    this.epoch++; // answers still out describe the chip before the failure
    const code = error instanceof HalError || error instanceof Enc28j60Error ? error.code : 'internal';
    this.count(`error-${code}`);
    this.needsInit = true;
    this.knownPending = 0;
    this.initNotBefore = this.clock.now() + this.errorBackoff;
    this.errorBackoff = Math.min(this.errorBackoff * 2, 1000);
    if (!(error instanceof HalError) && !(error instanceof Enc28j60Error)) this.lastInternalError = error;
    this.wakeAtTime(this.initNotBefore);
  }

  /** The last unexpected exception inside the driver (a bug), for tests and diagnostics. */
  lastInternalError: unknown;

  private count(event: string): void {
    this.events[event] = (this.events[event] ?? 0) + 1;
  }
}
