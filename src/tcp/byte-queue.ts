/**
 * The receive queue: a FIFO of bytes kept as the chunks they arrived in (a segment's payload, kept
 * or copied once), read out whole chunks without copying where possible; drops are O(chunks).
 * The send side is a ring (send-buffer.ts).
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Bytes already consumed from chunks[0]. */
  private head = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  /** Append a copy of `data` (the caller may reuse its buffer). */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data.slice());
    this.total += data.length;
  }

  /** Append without copying: the caller gives up `data`. */
  pushOwned(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.total += data.length;
  }

  /** Copy `length` bytes starting `offset` bytes into the queue into `out` at `outOffset`. */
  copyOut(offset: number, length: number, out: Uint8Array, outOffset = 0): void {
    let skip = offset + this.head;
    let remaining = length;
    let o = outOffset;
    for (let i = 0; i < this.chunks.length && remaining > 0; i++) {
      const chunk = this.chunks[i]!;
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      const n = Math.min(chunk.length - skip, remaining);
      out.set(chunk.subarray(skip, skip + n), o);
      o += n;
      remaining -= n;
      skip = 0;
    }
  }

  /** Remove `n` bytes from the front. */
  drop(n: number): void {
    let remaining = Math.min(n, this.total);
    this.total -= remaining;
    while (remaining > 0) {
      const chunk = this.chunks[0]!;
      const left = chunk.length - this.head;
      if (remaining < left) {
        this.head += remaining;
        return;
      }
      remaining -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Remove and return up to `max` bytes from the front (whole chunks without copying where possible). */
  take(max = Infinity): Uint8Array {
    const n = Math.min(max, this.total);
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    if (this.head === 0 && first.length === n) {
      this.chunks.shift();
      this.total -= n;
      return first;
    }
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.drop(n);
      return out;
    }
    const out = new Uint8Array(n);
    this.copyOut(0, n, out);
    this.drop(n);
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.total = 0;
  }
}
