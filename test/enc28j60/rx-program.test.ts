import { describe, expect, it } from 'vitest';
import { parseRun } from '../../src/drivers/enc28j60/rx-program.js';

// A run's answer (docs/bridge-protocol.md §3.2): EIR, EPKTCNT, then — when a packet waited —
// ERDPTL, ERDPTH, the 6-byte header, and the frame with its FCS and pad.
const ERXND = 0x13ff;
const MAMXFL = 1518;

function answer(options: { start: number; frame: Uint8Array; next?: number; count?: number; trim?: number }): Uint8Array {
  const byteCount = options.frame.length + 4;
  const span = 6 + byteCount + (byteCount & 1);
  const next = options.next ?? (options.start + span) % (ERXND + 1);
  const bytes = [0x40, options.count ?? 1, options.start & 0xff, options.start >> 8, next & 0xff, next >> 8, byteCount & 0xff, byteCount >> 8, 0x80, 0x00];
  const body = new Uint8Array(span - 6);
  body.set(options.frame);
  const all = Uint8Array.from([...bytes, ...body]);
  return all.subarray(0, all.length - (options.trim ?? 0));
}

describe('ENC28J60 receive program: a run\'s answer', () => {
  const frame = Uint8Array.from({ length: 61 }, (_, i) => i);

  it('is malformed when it lacks EIR or EPKTCNT', () => {
    expect(parseRun(Uint8Array.of(0x40), ERXND, MAMXFL)).toEqual({ kind: 'malformed' });
  });

  it('is empty when EPKTCNT was 0: the run stopped after its condition', () => {
    expect(parseRun(Uint8Array.of(0x08, 0), ERXND, MAMXFL)).toEqual({ kind: 'empty', eir: 0x08 });
  });

  it('gives the packet read at ERDPT, its frame without FCS and pad', () => {
    const run = parseRun(answer({ start: 0x0100, frame, count: 3 }), ERXND, MAMXFL);
    expect(run).toMatchObject({ kind: 'packet', eir: 0x40, packetCount: 3, start: 0x0100, header: { next: 0x0100 + 6 + 65 + 1, byteCount: 65 } });
    expect(run.kind === 'packet' && Array.from(run.frame)).toEqual(Array.from(frame));
  });

  it('gives the FCS as read after the frame, least significant byte first (IEEE 802.3 §3.2.9), for the driver to check', () => {
    const bytes = answer({ start: 0x0100, frame, count: 1 });
    bytes.set([0x78, 0x56, 0x34, 0x12], 10 + frame.length);
    const run = parseRun(bytes, ERXND, MAMXFL);
    expect(run.kind === 'packet' && run.fcs).toBe(0x12345678);
  });

  it('follows a packet across the end of the ring', () => {
    const run = parseRun(answer({ start: 0x13e0, frame }), ERXND, MAMXFL);
    expect(run).toMatchObject({ kind: 'packet', header: { next: (0x13e0 + 72) % 0x1400 } });
  });

  it('is too-long, a drop the driver skips, when the chip stored a frame over MAMXFL whole (MACON3.HFRMEN, DS-ENC Register 6-2) and the program read all of it', () => {
    const giant = Uint8Array.from({ length: 1600 }, (_, i) => i & 0xff);
    const run = parseRun(answer({ start: 0x0100, frame: giant, count: 2 }), ERXND, MAMXFL);
    expect(run).toMatchObject({ kind: 'too-long', eir: 0x40, packetCount: 2, start: 0x0100, header: { next: 0x0100 + 6 + 1604, byteCount: 1604 } });
    expect(parseRun(answer({ start: 0x0100, frame: giant, trim: 2 }), ERXND, MAMXFL)).toEqual({ kind: 'corrupt', eir: 0x40 });
  });

  it('is corrupt when the header does not fit where it was read, or the answer is cut short', () => {
    expect(parseRun(answer({ start: 0x0100, frame, next: 0x0200 }), ERXND, MAMXFL)).toEqual({ kind: 'corrupt', eir: 0x40 });
    expect(parseRun(answer({ start: 0x0101, frame }), ERXND, MAMXFL)).toEqual({ kind: 'corrupt', eir: 0x40 });
    expect(parseRun(answer({ start: 0x0100, frame, trim: 1 }), ERXND, MAMXFL)).toEqual({ kind: 'corrupt', eir: 0x40 });
    expect(parseRun(Uint8Array.of(0x40, 1, 0x00, 0x01), ERXND, MAMXFL)).toEqual({ kind: 'corrupt', eir: 0x40 });
  });
});
