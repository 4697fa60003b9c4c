import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SendBuffer } from '../../src/tcp/send-buffer.js';

const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

describe('the send buffer (a ring)', () => {
  it('given writes that wrap the ring, copyOut and view return the bytes in order', () => {
    const buffer = new SendBuffer();
    buffer.push(bytes(0, 3000));
    buffer.drop(2500);
    buffer.push(bytes(3000, 3000)); // 3500 bytes held in a 4096-byte ring, wrapped
    expect(buffer.length).toBe(3500);
    const out = new Uint8Array(3500);
    buffer.copyOut(0, 3500, out);
    expect(out).toEqual(bytes(2500, 3500));
    expect(buffer.view(1000, 1500)).toEqual(bytes(3500, 1500));
  });

  it('copies the caller’s bytes: changing them after push changes nothing', () => {
    const buffer = new SendBuffer();
    const data = bytes(7, 100);
    buffer.push(data);
    data.fill(0);
    expect(buffer.view(0, 100)).toEqual(bytes(7, 100));
  });

  it('keeps every byte through random pushes, drops and reads (growth included)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 0, max: 9000 })), { maxLength: 40 }), (steps) => {
        const buffer = new SendBuffer();
        let written = 0;
        let acked = 0;
        for (const [push, drop] of steps) {
          buffer.push(bytes(written, push));
          written += push;
          const n = Math.min(drop, written - acked);
          buffer.drop(n);
          acked += n;
          expect(buffer.length).toBe(written - acked);
          if (buffer.length > 0) {
            const offset = Math.floor(buffer.length / 3);
            expect(buffer.view(offset, buffer.length - offset)).toEqual(bytes(acked + offset, buffer.length - offset));
          }
        }
      }),
    );
  });
});
