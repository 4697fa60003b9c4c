import type { SackBlock } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax } from './seq.js';

/** A SACKed range of sequence space, [left, right). */
export interface SackedRange {
  left: number;
  right: number;
}

/**
 * The sender's SACK scoreboard (RFC 6675 §3, §4): what the peer's SACK blocks (RFC 2018 §4) say
 * it holds above the cumulative ACK, and the queries loss recovery asks of it — IsLost, SetPipe,
 * NextSeg rule 1. `highAck` is RFC 6675's HighACK (SND.UNA), `highData` its HighData (SND.MAX);
 * `smss` is the sender's maximum segment size, and DupThresh comes from the options.
 */
export class SackScoreboard {
  /** SACKed ranges above HighACK, sorted and disjoint. */
  private ranges: SackedRange[] = [];
  /** RFC 6675 §2 HighRxt: the highest sequence number retransmitted in this recovery, + 1. */
  highRxt = 0;

  constructor(private readonly dupThresh: number) {}

  /** The ranges held, sorted and disjoint. */
  get sacked(): readonly SackedRange[] {
    return this.ranges;
  }

  /**
   * Merge one ACK's SACK blocks (RFC 6675 §4 Update()). Blocks that are empty, lie wholly at or
   * below `highAck` (D-SACK, RFC 2883) or reach past `highData` (never sent) are ignored; a block
   * that starts below `highAck` keeps only what lies above it. Touching ranges merge. True if the
   * blocks SACKed bytes the scoreboard did not hold.
   */
  update(blocks: readonly SackBlock[], highAck: number, highData: number): boolean {
    const before = this.sackedBytes();
    for (const block of blocks) {
      if (!seqLt(block.left, block.right) || seqLe(block.right, highAck) || seqGt(block.right, highData)) continue;
      let left = seqMax(block.left, highAck);
      let right = block.right;
      const merged: SackedRange[] = [];
      for (const b of this.ranges) {
        if (seqLt(b.right, left) || seqGt(b.left, right)) merged.push(b);
        else {
          if (seqLt(b.left, left)) left = b.left;
          if (seqGt(b.right, right)) right = b.right;
        }
      }
      merged.push({ left, right });
      merged.sort((a, b) => seqDiff(a.left, b.left));
      this.ranges = merged;
    }
    return this.sackedBytes() > before;
  }

  /** The cumulative ACK reached `ack`: what lies below it leaves the scoreboard. */
  acknowledge(ack: number): void {
    this.ranges = this.ranges.filter((b) => seqGt(b.right, ack));
    for (const b of this.ranges) if (seqLt(b.left, ack)) b.left = ack;
  }

  /** RFC 2018 §8: after a retransmission timeout the receiver may have reneged; forget it all. */
  clear(): void {
    this.ranges = [];
  }

  /** Bytes SACKed above HighACK. */
  sackedBytes(): number {
    let bytes = 0;
    for (const b of this.ranges) bytes += seqDiff(b.right, b.left);
    return bytes;
  }

  /** One SACKed range covers [left, right) whole. */
  covers(left: number, right: number): boolean {
    for (const b of this.ranges) if (seqLe(b.left, left) && seqGe(b.right, right)) return true;
    return false;
  }

  /**
   * RFC 6675 §4 IsLost(SeqNum): true when DupThresh discontiguous SACKed segments lie above
   * `seq`, or more than (DupThresh − 1)·SMSS bytes. A range counts as ⌈its length / SMSS⌉
   * segments, at least one.
   */
  isLost(seq: number, smss: number): boolean {
    let bytes = 0;
    let segments = 0;
    for (const b of this.ranges) {
      if (seqLe(b.right, seq)) continue;
      const left = seqMax(b.left, seqAdd(seq, 1));
      bytes += seqDiff(b.right, left);
      segments += Math.max(1, Math.ceil(seqDiff(b.right, left) / smss));
    }
    return segments >= this.dupThresh || bytes > (this.dupThresh - 1) * smss;
  }

  /**
   * RFC 6675 §4 SetPipe: the bytes believed in flight between HighACK and HighData. Each hole
   * (un-SACKed range) counts once unless IsLost says it left the network (step (a)), and again
   * for what of it has been retransmitted, below HighRxt (step (b)).
   */
  pipe(highAck: number, highData: number, smss: number): number {
    let pipe = 0;
    let cursor = highAck;
    const holes: [number, number][] = [];
    for (const b of this.ranges) {
      if (seqLt(cursor, b.left)) holes.push([cursor, b.left]);
      cursor = seqMax(cursor, b.right);
    }
    if (seqLt(cursor, highData)) holes.push([cursor, highData]);
    for (const [left, right] of holes) {
      const size = seqDiff(right, left);
      const retransmitted = seqGt(this.highRxt, left) ? Math.min(size, seqDiff(this.highRxt, left)) : 0;
      if (this.isLost(left, smss)) pipe += retransmitted;
      else pipe += size + retransmitted;
    }
    return pipe;
  }

  /**
   * RFC 6675 §4 NextSeg() rule 1: the first byte of a hole below the highest SACKed range, at or
   * above HighRxt, that IsLost — with how much to send from it (up to SMSS, not into SACKed data).
   * Undefined when there is none (rules 2–4, new data, are the caller's).
   */
  nextLost(highAck: number, smss: number): { seq: number; length: number } | undefined {
    let cursor = highAck;
    for (const b of this.ranges) {
      if (seqLt(cursor, b.left)) {
        const start = seqMax(cursor, this.highRxt);
        if (seqLt(start, b.left) && this.isLost(start, smss)) return { seq: start, length: Math.min(smss, seqDiff(b.left, start)) };
      }
      cursor = seqMax(cursor, b.right);
    }
    return undefined;
  }
}
