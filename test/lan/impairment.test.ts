import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { ImpairedLan, ImpairedNic, ImpairmentChannel, type ImpairmentConfig } from '../../hal/lan/impairment.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { parseMac } from '../../src/wire/address.js';

/** A frame whose bytes 14..17 carry its sequence number, so the test can tell frames apart. */
function numberedFrame(n: number, length = 64): Uint8Array {
  const frame = new Uint8Array(length);
  frame.fill(0xff, 0, 6);
  frame.set([2, 0, 0, 0, 0, 1], 6);
  new DataView(frame.buffer).setUint32(14, n);
  return frame;
}
const numberOf = (frame: Uint8Array): number => new DataView(frame.buffer, frame.byteOffset).getUint32(14);

function channel(config: ImpairmentConfig, seed = 1) {
  const clock = new VirtualClock();
  const out: { n: number; at: number; frame: Uint8Array }[] = [];
  const ch = new ImpairmentChannel(config, clock, new SeededRandom(seed), (frame) => out.push({ n: numberOf(frame), at: clock.now(), frame }));
  return { clock, ch, out };
}

describe('ImpairmentChannel', () => {
  it('with no knob set, delivers every frame at once and in order', () => {
    const { ch, out } = channel({});
    for (let i = 0; i < 5; i++) ch.offer(numberedFrame(i));
    expect(out.map((o) => o.n)).toEqual([0, 1, 2, 3, 4]);
    expect(ch.transparent).toBe(true);
    expect(ch.stats).toMatchObject({ offered: 5, delivered: 5, lost: 0 });
  });

  it('loses about the configured share of frames, and the same seed loses the same frames', () => {
    const run = (seed: number) => {
      const { ch, out } = channel({ loss: 0.3 }, seed);
      for (let i = 0; i < 10_000; i++) ch.offer(numberedFrame(i));
      return { stats: ch.stats, delivered: out.map((o) => o.n) };
    };
    const a = run(42);
    expect(a.stats.lost).toBeGreaterThan(2_800);
    expect(a.stats.lost).toBeLessThan(3_200);
    expect(a.stats.lost + a.stats.delivered).toBe(10_000);
    expect(run(42).delivered).toEqual(a.delivered);
    expect(run(43).delivered).not.toEqual(a.delivered);
  });

  it('delivers a duplicated frame twice, the copy right after the original', () => {
    const { ch, out } = channel({ duplicate: 1 });
    ch.offer(numberedFrame(1));
    ch.offer(numberedFrame(2));
    expect(out.map((o) => o.n)).toEqual([1, 1, 2, 2]);
    expect(ch.stats).toMatchObject({ offered: 2, delivered: 4, duplicated: 2 });
  });

  it('flips exactly corruptBits bits, past corruptFromOffset, in a copy of the frame', () => {
    const { ch, out } = channel({ corrupt: 1, corruptBits: 3, corruptFromOffset: 14 });
    for (let i = 0; i < 200; i++) {
      const original = numberedFrame(i, 100);
      const pristine = original.slice();
      ch.offer(original);
      expect(original).toEqual(pristine);
      const got = out[i]!.frame;
      let flipped = 0;
      for (let b = 0; b < got.length; b++) {
        let x = got[b]! ^ pristine[b]!;
        if (b < 14) expect(x).toBe(0);
        while (x) {
          flipped += x & 1;
          x >>>= 1;
        }
      }
      // Three draws may hit the same bit twice (it flips back): 1 or 3 bits differ.
      expect([1, 3]).toContain(flipped);
    }
    expect(ch.stats.corrupted).toBe(200);
  });

  it('holds a reordered frame back until the next one has passed', () => {
    const { ch, out } = channel({ reorder: 1 });
    for (let i = 1; i <= 4; i++) ch.offer(numberedFrame(i));
    expect(out.map((o) => o.n)).toEqual([2, 1, 4, 3]);
    expect(ch.stats.reordered).toBe(2);
  });

  it('releases a held-back frame after reorderHoldMs when no frame follows', () => {
    const { clock, ch, out } = channel({ reorder: 1, reorderHoldMs: 7 });
    ch.offer(numberedFrame(1));
    clock.advance(6.9);
    expect(out).toHaveLength(0);
    clock.advance(0.1);
    expect(out).toEqual([expect.objectContaining({ n: 1, at: 7 })]);
  });

  it('delays by delayMs plus up to jitterMs, and jitter never reorders', () => {
    const { clock, ch, out } = channel({ delayMs: 20, jitterMs: 10 }, 9);
    for (let i = 0; i < 100; i++) {
      ch.offer(numberedFrame(i));
      clock.advance(1);
    }
    clock.runUntilIdle();
    expect(out.map((o) => o.n)).toEqual([...Array(100).keys()]);
    out.forEach((o, i) => {
      expect(o.at - i).toBeGreaterThanOrEqual(20);
      // A frame may wait behind a slower predecessor, never beyond that predecessor's worst case.
      expect(o.at - i).toBeLessThanOrEqual(30);
    });
    expect(new Set(out.map((o) => o.at - out.indexOf(o))).size).toBeGreaterThan(10);
  });

  it('serializes frames at the configured rate and tail-drops beyond the queue limit', () => {
    // 1000-byte frames at 100 kB/s: 10 ms each; the queue holds 5 of them.
    const { clock, ch, out } = channel({ rateBytesPerSecond: 100_000, queueLimitBytes: 5_000 });
    for (let i = 0; i < 8; i++) ch.offer(numberedFrame(i, 1000));
    expect(ch.stats.queueDrops).toBe(3);
    expect(ch.stats.queuedBytes).toBe(5_000);
    clock.runUntilIdle();
    expect(out.map((o) => [o.n, o.at])).toEqual([
      [0, 10],
      [1, 20],
      [2, 30],
      [3, 40],
      [4, 50],
    ]);
    expect(ch.stats.queuedBytes).toBe(0);
  });

  it('rejects a probability outside [0, 1]', () => {
    expect(() => channel({ loss: 1.5 })).toThrow(/probability/);
    expect(() => channel({ rateBytesPerSecond: 0 })).toThrow(/> 0/);
  });

  it('without loss or duplication, delivers every frame exactly once, whatever else is set', () => {
    fc.assert(
      fc.property(
        fc.record({
          reorder: fc.double({ min: 0, max: 1, noNaN: true }),
          delayMs: fc.integer({ min: 0, max: 50 }),
          jitterMs: fc.integer({ min: 0, max: 50 }),
          corrupt: fc.double({ min: 0, max: 1, noNaN: true }),
          corruptFromOffset: fc.constant(18),
          rateBytesPerSecond: fc.option(fc.integer({ min: 10_000, max: 10_000_000 }), { nil: undefined }),
          queueLimitBytes: fc.constant(1 << 30),
        }),
        fc.integer(),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 60 }),
        (config, seed, gaps) => {
          const { clock, ch, out } = channel(config, seed);
          gaps.forEach((gap, i) => {
            ch.offer(numberedFrame(i));
            clock.advance(gap);
          });
          clock.runUntilIdle();
          expect(out.map((o) => o.n).sort((a, b) => a - b)).toEqual([...gaps.keys()]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('ImpairedLan', () => {
  async function twoNics(lan: VirtualLan) {
    const a = new VirtualNic(lan, parseMac('02:00:00:00:00:0a'), 'a');
    const b = new VirtualNic(lan, parseMac('02:00:00:00:00:0b'), 'b');
    const got = { a: [] as number[], b: [] as number[] };
    a.attach({ receive: (f) => got.a.push(numberOf(f)), linkChange: () => {} });
    b.attach({ receive: (f) => got.b.push(numberOf(f)), linkChange: () => {} });
    await a.start();
    await b.start();
    return { a, b, got };
  }

  it('impairs only the port and direction it was told to', async () => {
    const clock = new VirtualClock();
    const lan = new ImpairedLan(clock, { seed: 3 });
    lan.impair('b', { toPort: { delayMs: 5 } });
    const { a, b, got } = await twoNics(lan);
    a.transmit(numberedFrame(1));
    b.transmit(numberedFrame(2));
    expect(got.a).toEqual([2]);
    expect(got.b).toEqual([]);
    clock.advance(5);
    expect(got.b).toEqual([1]);
    expect(lan.impairmentStats('b')?.toPort).toMatchObject({ offered: 1, delivered: 1, delayed: 1 });
    expect(lan.impairmentStats('a')?.toPort).toMatchObject({ offered: 1, delivered: 1, delayed: 0 });
  });

  it('applies a from-port impairment before switching, to ports plugged before the call too', async () => {
    const clock = new VirtualClock();
    const lan = new ImpairedLan(clock);
    const { a, got } = await twoNics(lan);
    lan.impair('a', { fromPort: { loss: 1 } });
    for (let i = 0; i < 10; i++) a.transmit(numberedFrame(i));
    expect(got.b).toEqual([]);
    expect(lan.impairmentStats('a')?.fromPort.lost).toBe(10);
    lan.impairAll({});
    lan.impair('a', {});
    a.transmit(numberedFrame(11));
    expect(got.b).toEqual([11]);
  });

  it('gives the same fates for the same seed even when another port is impaired too', async () => {
    const run = async (impairA: boolean) => {
      const clock = new VirtualClock();
      const lan = new ImpairedLan(clock, { seed: 11 });
      lan.impair('b', { toPort: { loss: 0.5 } });
      if (impairA) lan.impair('a', { toPort: { loss: 0.5 } });
      const { a, b, got } = await twoNics(lan);
      for (let i = 0; i < 200; i++) {
        a.transmit(numberedFrame(i));
        b.transmit(numberedFrame(i));
      }
      return got.b;
    };
    expect(await run(true)).toEqual(await run(false));
  });
});

describe('ImpairedNic', () => {
  it('wraps any NIC: impairs what it transmits and what it receives, and forwards the rest', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const inner = new VirtualNic(lan, parseMac('02:00:00:00:00:0a'), 'a');
    const nic = new ImpairedNic(inner, { clock, seed: 5, transmit: { delayMs: 3 }, receive: { duplicate: 1 } });
    const peer = new VirtualNic(lan, parseMac('02:00:00:00:00:0b'), 'b');
    const atPeer: number[] = [];
    const atNic: number[] = [];
    const links: boolean[] = [];
    peer.attach({ receive: (f) => atPeer.push(numberOf(f)), linkChange: () => {} });
    nic.attach({ receive: (f) => atNic.push(numberOf(f)), linkChange: (up) => links.push(up) });
    await nic.start();
    await peer.start();
    expect(nic.linkUp).toBe(true);
    expect(links).toEqual([true]);
    expect(nic.name).toBe('a');
    expect(nic.transmit(numberedFrame(1))).toBe(true);
    expect(atPeer).toEqual([]);
    clock.advance(3);
    expect(atPeer).toEqual([1]);
    peer.transmit(numberedFrame(2));
    expect(atNic).toEqual([2, 2]);
    expect(nic.impairment.receive.duplicated).toBe(1);
    expect(nic.stats().txFrames).toBe(1);
    await nic.stop();
    expect(nic.transmit(numberedFrame(3))).toBe(false);
    expect(nic.stats().drops['link-down']).toBe(1);
  });
});
