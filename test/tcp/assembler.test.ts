import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Assembler } from '../../src/tcp/assembler.js';

/** The stream's bytes are a function of their sequence number, so any slice can be checked. */
const stream = (from: number, to: number) => Uint8Array.from({ length: to - from }, (_, i) => (from + i) & 0xff);
/** The same span with other contents, to see which copy the assembler keeps. */
const marked = (from: number, to: number) => new Uint8Array(to - from).fill(0xee);

/** Everything in order from `next`: the chunks takeContiguous hands back. */
function drain(assembler: Assembler, next: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let data = assembler.takeContiguous(next); data; data = assembler.takeContiguous(next)) {
    out.push(data);
    next = (next + data.length) >>> 0;
  }
  return out;
}

describe('the assembler: out-of-order segments (RFC 9293 §3.10.7.4 seventh)', () => {
  it('holds a segment beyond RCV.NXT and gives nothing while the gap before it is open', () => {
    const assembler = new Assembler(64);
    expect(assembler.insert(200, stream(200, 300))).toBe('stored');
    expect(assembler.takeContiguous(100)).toBeUndefined();
    expect(assembler.count).toBe(1);
  });

  it('once RCV.NXT reaches them, hands the held segments back in sequence order', () => {
    const assembler = new Assembler(64);
    assembler.insert(300, stream(300, 400));
    assembler.insert(200, stream(200, 300));
    expect(drain(assembler, 200)).toEqual([stream(200, 300), stream(300, 400)]);
    expect(assembler.isEmpty).toBe(true);
  });

  it('gives only the part beyond RCV.NXT of a segment the in-order data reached into, and drops one it passed', () => {
    const assembler = new Assembler(64);
    assembler.insert(200, stream(200, 300));
    assembler.insert(400, stream(400, 500));
    expect(drain(assembler, 250)).toEqual([stream(250, 300)]);
    expect(drain(assembler, 450)).toEqual([stream(450, 500)]);
    assembler.insert(600, stream(600, 700));
    expect(assembler.takeContiguous(800)).toBeUndefined();
    expect(assembler.isEmpty).toBe(true);
  });

  it('keeps a copy: the caller may reuse its buffer', () => {
    const assembler = new Assembler(64);
    const data = stream(200, 300);
    assembler.insert(200, data);
    data.fill(0);
    expect(drain(assembler, 200)).toEqual([stream(200, 300)]);
  });

  it('works across sequence-number wraparound', () => {
    const assembler = new Assembler(64);
    assembler.insert(0x10, stream(0x10, 0x20));
    assembler.insert(0xffff_fff0, stream(0, 0x20));
    expect(drain(assembler, 0xffff_fff0)).toEqual([stream(0, 0x20), stream(0x10, 0x20)]);
  });
});

describe('the assembler: overlap', () => {
  it('a segment it holds already is a duplicate, and nothing changes', () => {
    const assembler = new Assembler(64);
    assembler.insert(200, stream(200, 300));
    expect(assembler.insert(220, marked(220, 260))).toBe('duplicate');
    expect(assembler.count).toBe(1);
    expect(drain(assembler, 200)).toEqual([stream(200, 300)]);
  });

  it('a segment starting inside a held one keeps the held bytes and adds only what follows them', () => {
    const assembler = new Assembler(64);
    assembler.insert(200, stream(200, 300));
    expect(assembler.insert(250, marked(250, 350))).toBe('stored');
    expect(drain(assembler, 200)).toEqual([stream(200, 300), marked(300, 350)]);
  });

  it('a segment covering held ones and reaching into another adds only the gaps between them: the held bytes stay (the first copy wins)', () => {
    const assembler = new Assembler(64);
    assembler.insert(200, stream(200, 250));
    assembler.insert(300, stream(300, 350));
    assembler.insert(380, stream(380, 450));
    expect(assembler.insert(150, marked(150, 400))).toBe('stored');
    expect(assembler.count).toBe(6);
    expect(drain(assembler, 150)).toEqual([marked(150, 200), stream(200, 250), marked(250, 300), stream(300, 350), marked(350, 380), stream(380, 450)]);
  });

  it('in every layout the first copy of a byte wins: any arrival order of overlapping copies hands back the first copy of each byte', () => {
    const BASE = 5000;
    const copy = fc.tuple(fc.integer({ min: BASE + 1, max: BASE + 300 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 255 }));
    fc.assert(
      fc.property(fc.array(copy, { minLength: 1, maxLength: 20 }), (copies) => {
        const assembler = new Assembler(1000);
        const first = new Map<number, number>();
        for (const [seq, n, mark] of copies) {
          assembler.insert(seq, new Uint8Array(n).fill(mark));
          for (let x = seq; x < seq + n; x++) if (!first.has(x)) first.set(x, mark);
        }
        let next = BASE + 1;
        while (!first.has(next) && next < BASE + 400) next++;
        const got = drain(assembler, next).flatMap((chunk) => [...chunk]);
        return got.every((b, i) => b === first.get(next + i));
      }),
    );
  });
});

describe('the assembler: bounds', () => {
  it('holds at most `limit` segments; beyond, a new one is refused whole (also one whose gaps would need more)', () => {
    const assembler = new Assembler(2);
    assembler.insert(200, stream(200, 210));
    assembler.insert(300, stream(300, 310));
    expect(assembler.insert(400, stream(400, 410))).toBe('full');
    expect(assembler.insert(205, stream(205, 210))).toBe('duplicate');
    expect(assembler.count).toBe(2);
    expect(drain(assembler, 200)).toEqual([stream(200, 210)]);
  });

  it('clear lets go of everything', () => {
    const assembler = new Assembler(64);
    assembler.insert(200, stream(200, 300));
    assembler.clear();
    expect(assembler.isEmpty).toBe(true);
    expect(assembler.sackBlocks()).toEqual([]);
  });
});

describe('the assembler: SACK blocks (RFC 2018 §4)', () => {
  it('one block per contiguous run held: touching segments make one block, [left edge, right edge)', () => {
    const assembler = new Assembler(64);
    assembler.insert(200, stream(200, 300));
    assembler.insert(300, stream(300, 400));
    expect(assembler.sackBlocks()).toEqual([{ left: 200, right: 400 }]);
  });

  it('the first block holds the segment that arrived last; then the blocks of earlier arrivals, newest first; then the rest', () => {
    const assembler = new Assembler(64);
    assembler.insert(500, stream(500, 600));
    assembler.insert(300, stream(300, 400));
    assembler.insert(700, stream(700, 800));
    expect(assembler.sackBlocks()).toEqual([
      { left: 700, right: 800 },
      { left: 300, right: 400 },
      { left: 500, right: 600 },
    ]);
    // A duplicate of held data is the latest arrival too ("the segment which triggered this ACK").
    assembler.insert(520, stream(520, 540));
    expect(assembler.sackBlocks()[0]).toEqual({ left: 500, right: 600 });
  });

  it('no blocks when nothing is held', () => {
    expect(new Assembler(64).sackBlocks()).toEqual([]);
  });
});

describe('the assembler, whatever the arrivals', () => {
  it('hands back exactly the stream, in order, as far as the arrivals cover it from RCV.NXT; its SACK blocks are the rest, disjoint', () => {
    const BASE = 1000;
    const segment = fc.tuple(fc.integer({ min: BASE + 1, max: BASE + 400 }), fc.integer({ min: 1, max: 80 }));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 30 }), fc.integer({ min: BASE, max: BASE + 200 }), (segments, next) => {
        const assembler = new Assembler(1000);
        const held = new Set<number>();
        for (const [seq, n] of segments) {
          assembler.insert(seq, stream(seq, seq + n));
          for (let x = seq; x < seq + n; x++) held.add(x);
        }
        const blocks = [...assembler.sackBlocks()].sort((a, b) => a.left - b.left);
        for (let i = 1; i < blocks.length; i++) if (blocks[i - 1]!.right >= blocks[i]!.left) return false;
        const inBlocks = new Set<number>();
        for (const b of blocks) for (let x = b.left; x < b.right; x++) inBlocks.add(x);
        if (inBlocks.size !== held.size || [...held].some((x) => !inBlocks.has(x))) return false;
        let end = next;
        while (held.has(end)) end++;
        const out = drain(assembler, next);
        const got = Uint8Array.from(out.flatMap((chunk) => [...chunk]));
        return got.length === end - next && got.every((b, i) => b === ((next + i) & 0xff));
      }),
    );
  });
});
