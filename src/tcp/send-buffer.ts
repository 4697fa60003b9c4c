/**
 * The send buffer: bytes the application wrote and the peer has not acknowledged, in a ring.
 * `push` copies the application's bytes in once (the one copy a write costs: the caller may reuse
 * its buffer as soon as the write completes); segments read their payload straight out of the
 * ring, so a busy connection allocates nothing per write or per segment. The ring starts small and
 * doubles up to the send-buffer size, so a connection that never writes costs nothing and one that
 * writes a few bytes costs little.
 */
/** Smallest ring: V8 keeps typed arrays this small on the JS heap, so a one-line write costs little. */
const INITIAL_CAPACITY = 64;
/** Shared by every buffer that has not been written to (capacity 0: never written through). */
const NO_RING = new Uint8Array(0);

export class SendBuffer {
  private ring: Uint8Array = NO_RING;
  /** Index of the oldest byte in `ring`. */
  private head = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  /** Append a copy of `data`. */
  push(data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    this.reserve(this.total + n);
    const capacity = this.ring.length;
    const tail = (this.head + this.total) % capacity;
    const first = Math.min(n, capacity - tail);
    this.ring.set(first === n ? data : data.subarray(0, first), tail);
    if (first < n) this.ring.set(data.subarray(first), 0);
    this.total += n;
  }

  /**
   * `length` bytes starting `offset` bytes into the buffer, without copying when they are
   * contiguous in the ring (the caller reads them before the next push or drop); copied otherwise.
   */
  view(offset: number, length: number): Uint8Array {
    const capacity = this.ring.length;
    const start = (this.head + offset) % capacity;
    if (start + length <= capacity) return this.ring.subarray(start, start + length);
    const out = new Uint8Array(length);
    this.copyOut(offset, length, out);
    return out;
  }

  /** Copy `length` bytes starting `offset` bytes into the buffer into `out` at `outOffset`. */
  copyOut(offset: number, length: number, out: Uint8Array, outOffset = 0): void {
    if (length <= 0) return;
    const capacity = this.ring.length;
    const start = (this.head + offset) % capacity;
    const first = Math.min(length, capacity - start);
    out.set(this.ring.subarray(start, start + first), outOffset);
    if (first < length) out.set(this.ring.subarray(0, length - first), outOffset + first);
  }

  /** Remove `n` bytes from the front (acknowledged). */
  drop(n: number): void {
    const k = Math.min(n, this.total);
    this.total -= k;
    this.head = this.total === 0 ? 0 : (this.head + k) % this.ring.length;
  }

  private reserve(needed: number): void {
    const capacity = this.ring.length;
    if (needed <= capacity) return;
    let size = Math.max(INITIAL_CAPACITY, capacity);
    while (size < needed) size *= 2;
    const ring = new Uint8Array(size);
    this.copyOut(0, this.total, ring);
    this.ring = ring;
    this.head = 0;
  }
}
