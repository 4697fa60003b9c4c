import type { SackBlock } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from './seq.js';

interface HeldSegment {
  seq: number;
  data: Uint8Array;
}

/** What `insert` did with a segment. */
export type AssemblerInsert = 'stored' | 'duplicate' | 'full';

/** Arrivals remembered for the order of SACK blocks: more than the four an option can carry (RFC 2018 §3). */
const RECENT_SEGMENTS = 8;
const NO_BLOCKS: readonly SackBlock[] = [];

/**
 * The receiver's out-of-order queue (RFC 9293 §3.10.7.4 seventh: segments beyond RCV.NXT are
 * held, "to be processed later"): segments placed by sequence number, kept sorted and disjoint,
 * handed back in order once RCV.NXT reaches them, and described as the SACK blocks RFC 2018 §4
 * asks for. Positions are sequence numbers modulo 2^32 (`seq.ts`), so wraparound is invisible.
 *
 * Overlap, in one place and the same in every layout: the first copy of a byte wins. A new
 * segment keeps only the bytes no held segment has — the part before a held one, the gaps
 * between held ones, the part after — so whatever arrives later cannot change what is queued (an
 * attacker's overlapping segment rewrites nothing; RFC 9293 leaves the choice open, and BSD's
 * reassembly keeps the earlier copy of what precedes the new segment). The receive path applies
 * the same rule to in-order data reaching into held bytes (connection.ts). At most `limit`
 * segments are held; the receive window bounds their bytes.
 */
export class Assembler {
  private segments: HeldSegment[] = [];
  /** Starting sequence numbers of recent arrivals, newest first, for the order of SACK blocks. */
  private recent: number[] = [];

  constructor(private readonly limit: number) {}

  /** Nothing is held. */
  get isEmpty(): boolean {
    return this.segments.length === 0;
  }

  /** Segments held. */
  get count(): number {
    return this.segments.length;
  }

  /**
   * Hold what `data` (starting at `seq`, beyond RCV.NXT) adds: the bytes no held segment has, as
   * pieces in the gaps (copied). Returns 'duplicate' when held segments cover it all, 'full' when
   * its pieces would take more than `limit` segments (nothing is kept), else 'stored'.
   */
  insert(seq: number, data: Uint8Array): AssemblerInsert {
    if (data.length === 0) return 'duplicate';
    const queue = this.segments;
    const end = seqAdd(seq, data.length);
    // Held segments are sorted and disjoint: walk those that end after `seq`, collecting the gaps.
    let i = 0;
    while (i < queue.length && seqLe(seqAdd(queue[i]!.seq, queue[i]!.data.length), seq)) i++;
    const pieces: { at: number; seq: number; end: number }[] = [];
    let cursor = seq;
    let at = i;
    for (; at < queue.length && seqLt(cursor, end); at++) {
      const held = queue[at]!;
      if (seqGe(held.seq, end)) break;
      if (seqLt(cursor, held.seq)) pieces.push({ at, seq: cursor, end: held.seq });
      const heldEnd = seqAdd(held.seq, held.data.length);
      if (seqGt(heldEnd, cursor)) cursor = heldEnd;
    }
    if (seqLt(cursor, end)) pieces.push({ at, seq: cursor, end });
    if (pieces.length === 0) {
      this.noteArrival(seq);
      return 'duplicate';
    }
    if (queue.length + pieces.length > this.limit) return 'full';
    // Insert from the last piece back, so the earlier positions stay right.
    for (let p = pieces.length - 1; p >= 0; p--) {
      const piece = pieces[p]!;
      queue.splice(piece.at, 0, { seq: piece.seq, data: data.slice(seqDiff(piece.seq, seq), seqDiff(piece.end, seq)) });
    }
    this.noteArrival(seq);
    return 'stored';
  }

  /** Where the first held segment starts, if any is held. */
  get firstHeld(): number | undefined {
    return this.segments[0]?.seq;
  }

  /**
   * The next in-order bytes once RCV.NXT is `next`: the fresh part of the first held segment that
   * starts at or before `next`, removed from the queue (segments wholly below `next` are dropped
   * on the way). Undefined when the first held byte is beyond `next` or nothing is held.
   */
  takeContiguous(next: number): Uint8Array | undefined {
    const queue = this.segments;
    while (queue.length > 0) {
      const s = queue[0]!;
      if (seqGt(s.seq, next)) return undefined;
      queue.shift();
      const end = seqAdd(s.seq, s.data.length);
      if (seqLe(end, next)) continue;
      return s.data.subarray(seqDiff(next, s.seq));
    }
    return undefined;
  }

  /**
   * The SACK blocks describing what is held (RFC 2018 §4): touching segments form one block; the
   * block holding the most recent arrival first, then the blocks of earlier arrivals, newest
   * first, then the rest in sequence order.
   */
  sackBlocks(): readonly SackBlock[] {
    if (this.segments.length === 0) return NO_BLOCKS;
    const ranges: { left: number; right: number }[] = [];
    for (const s of this.segments) {
      const end = seqAdd(s.seq, s.data.length);
      const last = ranges[ranges.length - 1];
      if (last && last.right === s.seq) last.right = end;
      else ranges.push({ left: s.seq, right: end });
    }
    const out: SackBlock[] = [];
    for (const seq of this.recent) {
      const r = ranges.find((x) => seqLe(x.left, seq) && seqLt(seq, x.right));
      if (r && !out.includes(r)) out.push(r);
    }
    for (const r of ranges) if (!out.includes(r)) out.push(r);
    return out;
  }

  /** Let go of everything held. */
  clear(): void {
    this.segments = [];
    this.recent = [];
  }

  private noteArrival(seq: number): void {
    this.recent = [seq, ...this.recent.filter((s) => s !== seq)].slice(0, RECENT_SEGMENTS);
  }
}
