import type { CommandBatch } from './batch.js';
import type { Enc28j60Options } from './options.js';
import * as R from './registers.js';
import { classifyHeader, frameLength, packetSpan, parseRxHeader, releasePointer, ringAdvance, ringDistance, storedFcs, type RxHeader } from './rx-ring.js';

/**
 * The driver's model of the receive ring, and the batch commands that walk it: where the next
 * packet starts, where ERDPT will be, what was read ahead of a packet that did not fit, and what
 * is taken but not yet decremented (PKTDEC) or released (ERXRDPT).
 *
 * The model is updated when a command is put into a batch, not when the batch returns: batches
 * run in the order they are built, so the next one can be built from it at once. Bytes a read
 * brings back are trusted only as far as EPKTCNT, read in the same batch just before them, says
 * packets were complete (DS-ENC §7.2).
 */

/** What the reader needs from the driver. */
export interface RingReaderHooks {
  /** A complete packet: its header, its frame without the FCS, and the FCS as read. */
  take(header: RxHeader, frame: Uint8Array, fcs: number): void;
  /** A packet longer than MAMXFL, skipped by its next packet pointer (its frame is not read). */
  tooLong(): void;
  /** A header that cannot be where it was read: the ring needs a receiver reset. */
  corrupt(): void;
  /** A read found EPKTCNT at 0 where packets were known: a reset underneath or lost state. */
  lost(): void;
}

/** A ring read put into a batch: where its answer is. */
export interface RingRead {
  /** Offset of EPKTCNT in the batch's answer. */
  countAt: number;
  /** The bytes read. */
  data(r: Uint8Array): Uint8Array;
  /** Take note of ERXWRPT, when the read asked for it (forgets it otherwise). */
  noteWritePointer(r: Uint8Array): void;
}

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

export class RingReader {
  /** Start of the oldest packet in the ring not yet taken. */
  nextPacket = 0;
  /** Complete packets from `nextPacket` on, by the last EPKTCNT read. */
  knownPending = 0;
  /** ERDPT as it will be after every batch built so far (AUTOINC wraps it within the ring). */
  private erdpt = 0;
  /** Bytes from `nextPacket` on already read: the start of a packet that did not fit. */
  private readAhead = EMPTY;
  /** The header at the start of `readAhead`, once it has been read whole. */
  private header: RxHeader | undefined;
  /** ERXWRPT at the last ring read (where complete packets end), if it looked sane. */
  private writePointer: number | undefined;
  /** Packets taken whose PKTDEC is still to be sent (with the next batch). */
  private pendingDecrements = 0;
  /** Ring bytes taken but not yet released by moving ERXRDPT. */
  private unreleased = 0;
  private readonly ringSize: number;

  constructor(
    /** ERXND: the ring runs from 0 (errata #5) to here. */
    private readonly ringEnd: number,
    private readonly options: Enc28j60Options,
    private readonly hooks: RingReaderHooks,
  ) {
    this.ringSize = ringEnd + 1;
  }

  /** The ring as RXRST or SRC leaves it: empty, ERDPT at 0, EPKTCNT 0. */
  reset(): void {
    this.writePointer = undefined;
    this.nextPacket = 0;
    this.erdpt = 0;
    this.readAhead = EMPTY;
    this.header = undefined;
    this.knownPending = 0;
    this.pendingDecrements = 0;
    this.unreleased = 0;
  }

  /** The chip is about to be re-initialised: the packets counted are as good as gone. */
  forgetPending(): void {
    this.knownPending = 0;
  }

  /** Packets were taken that the chip has not been told of (PKTDEC), or not released (ERXRDPT). */
  get holdsTaken(): boolean {
    return this.pendingDecrements > 0 || this.unreleased > 0;
  }

  /** Bytes of the ring in use as far as the reads have seen: taken and not released, plus complete packets waiting. */
  get bytesInUse(): number {
    const waiting = this.writePointer === undefined ? 0 : ringDistance(this.nextPacket, this.writePointer, this.ringEnd);
    return Math.min(this.ringSize, this.unreleased + waiting);
  }

  /** Ring space is taken and not released. */
  get holdsSpace(): boolean {
    return this.unreleased > 0;
  }

  /** Enough of the ring is held to release it without waiting for the end of the service. */
  releaseNeeded(): boolean {
    return this.unreleased >= this.ringSize * this.options.rxReleaseFraction;
  }

  /** Before a ring read: point ERDPT at `start`, release the ring if due, PKTDEC what was taken. */
  prepare(batch: CommandBatch, start: number): void {
    if (this.erdpt !== start) batch.write16(R.ERDPTL, start);
    if (this.releaseNeeded()) this.release(batch);
    this.decrementTaken(batch);
  }

  /**
   * EPKTCNT, then an RBM of `length` bytes from ERDPT (= `start`). The chip finished writing every
   * packet EPKTCNT counts before the RBM began, so those packets' bytes in the read are valid.
   */
  read(batch: CommandBatch, start: number, length: number, withWritePointer = false): RingRead {
    // ERXWRPT first (still in bank 0), when more packets wait: where the chip's complete packets
    // end, for sizing the next read. It is two reads, so a packet completing between them can
    // tear it; it is never trusted for validity, which EPKTCNT (one register) decides.
    const writeLowAt = withWritePointer ? batch.read(R.ERXWRPTL) : -1;
    const writeHighAt = withWritePointer ? batch.read(R.ERXWRPTH) : -1;
    const countAt = batch.read(R.EPKTCNT);
    const dataAt = batch.readBuffer(length);
    this.erdpt = ringAdvance(start, length, this.ringEnd);
    return {
      countAt,
      data: (r) => r.subarray(dataAt, dataAt + length),
      noteWritePointer: (r) => {
        if (!withWritePointer) {
          this.writePointer = undefined;
          return;
        }
        const pointer = r[writeLowAt]! | (r[writeHighAt]! << 8);
        this.writePointer = pointer <= this.ringEnd ? pointer : undefined;
      },
    };
  }

  /**
   * Continue reading the packet at `nextPacket` where the last read stopped. When its header is
   * known the read finishes it (frame + FCS + pad), so the same batch decrements EPKTCNT; the
   * read goes on past it speculatively: the next header, and `rxReadAheadBytes` more when another
   * packet is known to wait. `last`: this was the last packet known, so the service can end in
   * this batch too.
   */
  planRead(batch: CommandBatch): { handle: (r: Uint8Array) => void; last: boolean } {
    const held = this.readAhead;
    const start = ringAdvance(this.nextPacket, held.length, this.ringEnd);
    const header = this.header;
    const more = this.knownPending >= 2;
    const lookahead = R.RX_HEADER_BYTES + (more ? this.options.rxReadAheadBytes : 0);
    this.prepare(batch, start);
    if (!header) {
      // Only part of the header arrived with the last read.
      const length = Math.max(R.RX_HEADER_BYTES - held.length + this.options.rxReadAheadBytes, this.bytesCompleteFrom(start));
      const read = this.read(batch, start, length, true);
      const handle = (r: Uint8Array) => {
        const count = r[read.countAt]!;
        read.noteWritePointer(r);
        if (count === 0) this.lostPackets();
        else this.absorb(read.data(r), count);
      };
      return { handle, last: false };
    }
    const size = packetSpan(header.byteCount);
    const rest = size - held.length;
    // Every packet the chip had completed when the last batch read ERXWRPT comes in this one read
    // (then the next header, to know whether another completed meanwhile): past the first
    // two, a burst of frames costs one round trip, not one each. (The interrupt service does not
    // read ERXWRPT: an isolated frame would pay for it.)
    const complete = more ? this.bytesCompleteFrom(start) : 0;
    const read = this.read(batch, start, Math.max(rest + lookahead, complete > rest ? complete + R.RX_HEADER_BYTES : 0), more);
    batch.bitSet(R.ECON2, R.ECON2_PKTDEC);
    this.nextPacket = header.next;
    this.unreleased += size;
    this.readAhead = EMPTY;
    this.header = undefined;
    this.knownPending--;
    if (more && this.releaseNeeded()) this.release(batch);
    const handle = (r: Uint8Array) => {
      const count = r[read.countAt]!;
      read.noteWritePointer(r);
      if (count === 0) {
        this.lostPackets();
        return;
      }
      const data = read.data(r);
      const packet = concat(held.subarray(R.RX_HEADER_BYTES), data.subarray(0, rest));
      this.hooks.take(header, packet.subarray(0, frameLength(header)), storedFcs(packet, 0, header));
      this.absorb(data.subarray(rest), count - 1);
    };
    return { handle, last: !more };
  }

  /**
   * Ring bytes read from where `readAhead` ends; `count` packets from `nextPacket` on are complete.
   * Every complete packet among them is taken (its PKTDEC and ring release go with the next
   * batch); what is held of a partial one waits for the next read; bytes past the last counted
   * packet are not trusted.
   */
  absorb(bytes: Uint8Array, count: number): void {
    const buffer = concat(this.readAhead, bytes);
    let at = 0;
    let taken = 0;
    this.header = undefined;
    while (taken < count && buffer.length - at >= R.RX_HEADER_BYTES) {
      const header = parseRxHeader(buffer, at);
      const kind = classifyHeader(header, this.nextPacket, this.ringEnd, this.options.maxFrameLength);
      if (kind === 'corrupt') {
        this.hooks.corrupt();
        this.readAhead = EMPTY;
        this.knownPending = 0;
        return;
      }
      const size = packetSpan(header.byteCount);
      if (kind === 'too-long') {
        // Skipped, not read: the next read starts at its next packet pointer (prepare() moves ERDPT).
        this.hooks.tooLong();
        this.pendingDecrements++;
        this.unreleased += size;
        this.nextPacket = header.next;
        at = Math.min(at + size, buffer.length);
        taken++;
        continue;
      }
      if (at + size > buffer.length) {
        this.header = header;
        break;
      }
      const frameAt = at + R.RX_HEADER_BYTES;
      this.hooks.take(header, buffer.subarray(frameAt, frameAt + frameLength(header)), storedFcs(buffer, frameAt, header));
      this.pendingDecrements++;
      this.unreleased += size;
      this.nextPacket = header.next;
      at += size;
      taken++;
    }
    this.knownPending = count - taken;
    this.readAhead = this.knownPending > 0 ? buffer.slice(at) : EMPTY;
  }

  /**
   * A packet the board's program read and decremented by itself, ending at `next`: ERDPT is
   * there now, and the ring up to it is to be released.
   */
  takenByProgram(next: number): void {
    this.unreleased += ringDistance(this.nextPacket, next, this.ringEnd);
    this.nextPacket = next;
    this.erdpt = next;
  }

  /**
   * The ring's part of the end of a service: decrement and release what was taken, and point
   * ERDPT back at `nextPacket`, off the path of the next service (which would otherwise rewind
   * it first).
   */
  finishService(batch: CommandBatch): void {
    this.decrementTaken(batch);
    if (this.unreleased > 0) this.release(batch);
    if (this.erdpt !== this.nextPacket) {
      batch.write16(R.ERDPTL, this.nextPacket);
      this.erdpt = this.nextPacket;
    }
  }

  /** ERXRDPT just behind `nextPacket`, odd (errata #14): the ring before it is free again. */
  release(batch: CommandBatch): void {
    batch.write16(R.ERXRDPTL, releasePointer(this.nextPacket, this.ringEnd));
    this.unreleased = 0;
  }

  /** One PKTDEC per packet taken since the last batch (DS-ENC §7.2.4). */
  private decrementTaken(batch: CommandBatch): void {
    for (; this.pendingDecrements > 0; this.pendingDecrements--) batch.bitSet(R.ECON2, R.ECON2_PKTDEC);
  }

  /** Ring bytes from `start` to the last ERXWRPT seen: complete packets (0 when unknown). */
  private bytesCompleteFrom(start: number): number {
    const pointer = this.writePointer;
    if (pointer === undefined) return 0;
    return ringDistance(start, pointer, this.ringEnd);
  }

  private lostPackets(): void {
    this.knownPending = 0;
    this.readAhead = EMPTY;
    this.header = undefined;
    this.hooks.lost();
  }
}
