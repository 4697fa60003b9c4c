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
 * Overlap, in one place: bytes already held stay as they are; a new segment keeps only what it
 * adds. Where it starts inside a held segment, it is cut to begin where that one ends; held
 * segments it covers whole are replaced by it, and one it reaches into is cut to begin where it
 * ends. A correct peer resends the same bytes at the same sequence numbers, so which copy is
 * kept only matters for memory. At most `limit` segments are held; the receive window bounds their bytes.
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
   * Hold `data`, which starts at `seq` (beyond RCV.NXT; non-empty). The bytes are copied. Returns
   * 'duplicate' when a held segment covers it all, 'full' when `limit` segments are held already
   * (nothing is kept), else 'stored'.
   */
  insert(seq: number, data: Uint8Array): AssemblerInsert {
    if (data.length === 0) return 'duplicate';
    const queue = this.segments;
    let start = seq;
    let bytes = data;
    for (const s of queue) {
      const sEnd = seqAdd(s.seq, s.data.length);
      if (seqLe(s.seq, start) && seqGe(sEnd, seqAdd(start, bytes.length))) {
        this.noteArrival(seq);
        return 'duplicate';
      }
      if (seqLe(s.seq, start) && seqGt(sEnd, start)) {
        bytes = bytes.subarray(seqDiff(sEnd, start));
        start = sEnd;
      }
    }
    if (queue.length >= this.limit) return 'full';
    const end = seqAdd(start, bytes.length);
    let i = queue.length;
    while (i > 0 && seqGt(queue[i - 1]!.seq, start)) i--;
    // Held segments the new one covers whole give way; the first it reaches into is cut.
    let covered = 0;
    while (i + covered < queue.length && seqLe(seqAdd(queue[i + covered]!.seq, queue[i + covered]!.data.length), end)) covered++;
    queue.splice(i, covered, { seq: start, data: bytes.slice() });
    const next = queue[i + 1];
    if (next && seqLt(next.seq, end)) {
      next.data = next.data.subarray(seqDiff(end, next.seq));
      next.seq = end;
    }
    this.noteArrival(start);
    return 'stored';
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
