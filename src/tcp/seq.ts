/**
 * Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4, RFC 1982 serial-number style): every
 * comparison goes through the signed 32-bit difference, so wraparound at 2^32 is invisible.
 */

/** a - b as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}

export function seqMax(a: number, b: number): number {
  return seqGe(a, b) ? a : b;
}
