import type { Ipv4Address } from './address.js';

/**
 * The Internet checksum (RFC 1071): one's-complement sum of 16-bit big-endian words.
 * `sum16` returns the folded 16-bit sum (not complemented) so callers can chain a pseudo-header.
 */
export function sum16(bytes: Uint8Array, offset = 0, length = bytes.length - offset, initial = 0): number {
  let sum = initial;
  let i = offset;
  const end = offset + length;
  // Sum 16-bit words; defer carries (a JS number holds 2^53, far more than a 64 KiB datagram needs).
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value: complement of the folded sum. */
export function internetChecksum(bytes: Uint8Array, offset = 0, length = bytes.length - offset, initial = 0): number {
  return ~sum16(bytes, offset, length, initial) & 0xffff;
}

/** Sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768, RFC 9293 §3.1). */
export function pseudoHeaderSum(source: Ipv4Address, destination: Ipv4Address, protocol: number, length: number): number {
  let sum = (source >>> 16) + (source & 0xffff) + (destination >>> 16) + (destination & 0xffff) + protocol + length;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Incremental update (RFC 1624 eqn. 3): HC' = ~(~HC + ~m + m'), for a 16-bit field changing
 * from `oldWord` to `newWord` (e.g. TTL decrement, NAT rewrite).
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  let sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
