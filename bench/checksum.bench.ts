import { internetChecksum } from '../src/wire/checksum.js';
import { opsPerSecond, type Benchmark } from './harness.js';

/**
 * The Internet checksum (RFC 1071) over full-size and small packets, against the textbook
 * implementation (a DataView read and an end-around carry on every word) as the baseline.
 */
function naiveChecksum(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let sum = 0;
  let i = 0;
  for (; i + 1 < bytes.length; i += 2) {
    sum += view.getUint16(i);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (i < bytes.length) {
    sum += bytes[i]! << 8;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

function bytesPerSecond(size: number, checksum: (b: Uint8Array) => number): number {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + 3) & 0xff;
  let sink = 0;
  const rate = opsPerSecond(() => (sink ^= checksum(data)), { batch: Math.max(1, Math.floor(100_000 / size)) });
  if (sink === -1) console.log(sink); // keep the result alive
  return rate * size;
}

export const benchmarks: Benchmark[] = [
  {
    name: 'checksum',
    run() {
      // Same data, so the two must agree before their speed means anything.
      const probe = new Uint8Array(1501).map((_, i) => i * 13);
      if (naiveChecksum(probe) !== internetChecksum(probe)) throw new Error('naive and real checksums disagree');
      return [1500, 64].map((size) => ({
        name: `checksum ${size} B`,
        value: bytesPerSecond(size, (b) => internetChecksum(b)),
        unit: 'B/s',
        baseline: bytesPerSecond(size, naiveChecksum),
        note: 'baseline: DataView word + end-around carry per word',
      }));
    },
  },
];
