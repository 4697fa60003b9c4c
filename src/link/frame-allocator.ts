/**
 * Frames to transmit are carved from 64 KiB slabs, like Node's Buffer pool. Two reasons: one
 * ArrayBuffer allocation serves hundreds of small frames, and the frames are off-heap from the
 * start (V8 keeps typed arrays ≤ 64 bytes on the JS heap and must copy them out the first time
 * `.buffer` or `subarray` is used — which the receiving stack always does). A slab is freed when
 * every frame carved from it is garbage; frames are never reused, as the Nic contract requires.
 */
const SLAB_SIZE = 64 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabOffset = 0;

export function allocateFrame(length: number): Uint8Array {
  if (length > SLAB_SIZE / 8) return new Uint8Array(new ArrayBuffer(length));
  if (slabOffset + length > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabOffset = 0;
  }
  const frame = new Uint8Array(slab, slabOffset, length);
  // Keep frames 8-byte aligned so neighbouring frames never share a cache word needlessly.
  slabOffset = (slabOffset + length + 7) & ~7;
  return frame;
}
