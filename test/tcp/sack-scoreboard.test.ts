import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SackScoreboard } from '../../src/tcp/sack-scoreboard.js';

/** RFC 6675 §2: DupThresh is 3. Segments of 100 bytes keep the arithmetic readable. */
const DUP_THRESH = 3;
const SMSS = 100;
/** HighACK (SND.UNA) and HighData (SND.MAX) for most tests. */
const UNA = 1000;
const MAX = 2000;

const block = (left: number, right: number) => ({ left, right });

function scoreboard(...blocks: [number, number][]): SackScoreboard {
  const board = new SackScoreboard(DUP_THRESH);
  board.update(
    blocks.map(([l, r]) => block(l, r)),
    UNA,
    MAX,
  );
  return board;
}

describe('the SACK scoreboard: Update() (RFC 6675 §4, RFC 2018 §4)', () => {
  it('records the SACKed ranges, sorted, and says whether an ACK SACKed anything new', () => {
    const board = new SackScoreboard(DUP_THRESH);
    expect(board.update([block(1500, 1600), block(1200, 1300)], UNA, MAX)).toBe(true);
    expect(board.sacked).toEqual([block(1200, 1300), block(1500, 1600)]);
    expect(board.sackedBytes()).toBe(200);
    // RFC 2018 §4: a receiver repeats blocks it reported before; that is no new information.
    expect(board.update([block(1200, 1300)], UNA, MAX)).toBe(false);
  });

  it('merges overlapping and touching blocks into one range', () => {
    const board = scoreboard([1200, 1300], [1300, 1400], [1350, 1500]);
    expect(board.sacked).toEqual([block(1200, 1500)]);
    expect(board.sackedBytes()).toBe(300);
  });

  it('ignores a D-SACK block below HighACK (RFC 2883), an empty block, and a block past HighData; keeps only what lies above HighACK', () => {
    const board = scoreboard([900, 1000], [1300, 1300], [1900, 2100], [950, 1100]);
    expect(board.sacked).toEqual([block(1000, 1100)]);
  });

  it('drops what the cumulative ACK covers, and cuts a range it reaches into', () => {
    const board = scoreboard([1100, 1200], [1300, 1400]);
    board.acknowledge(1350);
    expect(board.sacked).toEqual([block(1350, 1400)]);
    expect(board.covers(1350, 1400)).toBe(true);
  });

  it('RFC 2018 §8: after a retransmission timeout the sender forgets what was SACKed (the receiver may renege)', () => {
    const board = scoreboard([1100, 1200]);
    board.clear();
    expect(board.sacked).toEqual([]);
    expect(board.sackedBytes()).toBe(0);
  });

  it('covers(left, right) only when one range holds all of it', () => {
    const board = scoreboard([1100, 1200], [1300, 1400]);
    expect(board.covers(1100, 1200)).toBe(true);
    expect(board.covers(1150, 1160)).toBe(true);
    expect(board.covers(1100, 1400)).toBe(false);
    expect(board.covers(1000, 1100)).toBe(false);
  });

  it('works across sequence-number wraparound', () => {
    const una = 0xffff_ff00;
    const board = new SackScoreboard(DUP_THRESH);
    board.update([block(0x10, 0x80), block(0xffff_ff80, 0x10)], una, 0x200);
    expect(board.sacked).toEqual([block(0xffff_ff80, 0x80)]);
    expect(board.sackedBytes()).toBe(0x100);
  });

  it('keeps the ranges sorted, disjoint and not touching, holding exactly the SACKed bytes above HighACK', () => {
    const blockArb = fc.tuple(fc.integer({ min: 900, max: 2100 }), fc.integer({ min: 0, max: 300 })).map(([l, n]) => block(l, l + n));
    fc.assert(
      fc.property(fc.array(fc.array(blockArb, { maxLength: 4 }), { maxLength: 8 }), (acks) => {
        const board = new SackScoreboard(DUP_THRESH);
        const held = new Set<number>();
        for (const blocks of acks) {
          board.update(blocks, UNA, MAX);
          for (const b of blocks) {
            if (b.left >= b.right || b.right <= UNA || b.right > MAX) continue;
            for (let x = Math.max(b.left, UNA); x < b.right; x++) held.add(x);
          }
        }
        const ranges = board.sacked;
        for (let i = 0; i < ranges.length; i++) {
          if (ranges[i]!.left >= ranges[i]!.right) return false;
          if (i > 0 && ranges[i - 1]!.right >= ranges[i]!.left) return false;
        }
        if (board.sackedBytes() !== held.size) return false;
        for (let x = UNA - 10; x < MAX + 10; x += 7) if (board.covers(x, x + 1) !== held.has(x)) return false;
        return true;
      }),
    );
  });
});

describe('IsLost(SeqNum) (RFC 6675 §4)', () => {
  it('is true once DupThresh discontiguous SACKed segments lie above the sequence number', () => {
    expect(scoreboard([1100, 1200], [1300, 1400], [1500, 1600]).isLost(UNA, SMSS)).toBe(true);
    expect(scoreboard([1100, 1200], [1300, 1400]).isLost(UNA, SMSS)).toBe(false);
  });

  it('is true once more than (DupThresh − 1)·SMSS bytes above it are SACKed', () => {
    // Exactly 2·SMSS in two segments: not yet. One byte more (a third, partial segment): lost.
    expect(scoreboard([1100, 1300]).isLost(UNA, SMSS)).toBe(false);
    expect(scoreboard([1100, 1301]).isLost(UNA, SMSS)).toBe(true);
  });

  it('counts a range as ⌈its length / SMSS⌉ segments, so 150 + 50 bytes are three segments', () => {
    expect(scoreboard([1100, 1250], [1400, 1450]).isLost(UNA, SMSS)).toBe(true);
  });

  it('counts only what is SACKed above the sequence number', () => {
    const board = scoreboard([1100, 1200], [1300, 1400], [1500, 1600]);
    expect(board.isLost(1050, SMSS)).toBe(true);
    expect(board.isLost(1250, SMSS)).toBe(false); // two segments above it
    expect(board.isLost(1550, SMSS)).toBe(false);
  });
});

describe('SetPipe() (RFC 6675 §4)', () => {
  it('with nothing SACKed, everything sent is in the pipe', () => {
    expect(new SackScoreboard(DUP_THRESH).pipe(UNA, 1500, SMSS)).toBe(500);
  });

  it('(a) leaves out holes IsLost says have left the network; SACKed bytes are never in it', () => {
    // [1000,1100) is lost (three SACKed segments above); [1400,1500) is not (nothing above it).
    const board = scoreboard([1100, 1400]);
    expect(board.pipe(UNA, 1500, SMSS)).toBe(100);
  });

  it('(b) counts what was retransmitted (below HighRxt) again, lost hole or not', () => {
    const board = scoreboard([1100, 1400]);
    board.highRxt = 1100; // the lost hole was resent
    expect(board.pipe(UNA, 1500, SMSS)).toBe(200);
    const notLost = scoreboard([1100, 1200]);
    notLost.highRxt = 1050; // half of a hole that is not (yet) lost, resent
    expect(notLost.pipe(UNA, 1500, SMSS)).toBe(100 + 50 + 300);
  });
});

describe('NextSeg() rule 1 (RFC 6675 §4)', () => {
  it('returns the first lost byte at or above HighRxt, up to SMSS and not into SACKed data', () => {
    const board = scoreboard([1050, 1100], [1200, 1300], [1400, 1500]);
    expect(board.nextLost(UNA, SMSS)).toEqual({ seq: 1000, length: 50 });
    board.highRxt = 1020;
    expect(board.nextLost(UNA, SMSS)).toEqual({ seq: 1020, length: 30 });
  });

  it('(1.c) skips holes that IsLost does not call lost', () => {
    const board = scoreboard([1050, 1100], [1200, 1300], [1400, 1500]);
    board.highRxt = 1050; // [1100,1200) has two segments above it, [1300,1400) one
    expect(board.nextLost(UNA, SMSS)).toBeUndefined();
  });

  it('(1.b) never returns data above the highest SACKed byte', () => {
    const board = scoreboard([1100, 1400]);
    board.highRxt = 1100;
    expect(board.nextLost(UNA, SMSS)).toBeUndefined(); // [1400, HighData) is rule 3's, not rule 1's
  });

  it('a hole longer than SMSS gives one segment from its start', () => {
    const board = scoreboard([1300, 1400], [1500, 1600], [1700, 1800]);
    expect(board.nextLost(UNA, SMSS)).toEqual({ seq: 1000, length: 100 });
  });
});
