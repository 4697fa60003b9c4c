import { ETHERNET_HEADER_LENGTH } from '../../wire/ethernet.js';
import { FCS_BYTES } from '../../wire/wire-time.js';
import { RSV_RECEIVED_OK, RSV_ZERO, RX_HEADER_BYTES } from './registers.js';

/**
 * The receive ring as the driver sees it: pure arithmetic on the chip's circular receive buffer
 * (DS39662E §7.2). The ring starts at 0x0000 (errata #5) and ends at ERXND, which is odd
 * (errata #14), so it holds ERXND + 1 bytes and every packet in it starts on an even address.
 *
 * Each packet is a 6-byte header — the next packet pointer and the receive status vector
 * (DS-ENC §7.2.2, p.43, Table 7-3) — then the frame with its FCS, then a pad byte when that ends
 * on an odd address. The chip wraps both its write pointer and ERDPT (with AUTOINC) from ERXND
 * back to the start, so a packet may run across the end of the ring.
 */

/** The 6 bytes in front of every received packet. */
export interface RxHeader {
  /** Next packet pointer: where the chip writes the packet after this one. */
  next: number;
  /** RSV bits 15:0: the frame's length on the wire, its FCS included (DS-ENC p.43). */
  byteCount: number;
  /** RSV bits 31:16 (received OK, CRC error, multicast, …). */
  status: number;
}

/**
 * A byte count smaller than an Ethernet header and its FCS cannot be a frame the stack could use;
 * the chip only stores one that small when the ring is corrupt.
 */
const MIN_BYTE_COUNT = ETHERNET_HEADER_LENGTH + FCS_BYTES;

/** The header at `at`: both pointers and the byte count are little-endian (DS-ENC p.43). */
export function parseRxHeader(bytes: Uint8Array, at = 0): RxHeader {
  return {
    next: bytes[at]! | (bytes[at + 1]! << 8),
    byteCount: bytes[at + 2]! | (bytes[at + 3]! << 8),
    status: bytes[at + 4]! | (bytes[at + 5]! << 8),
  };
}

/** RSV bit 23, "Received OK" (DS-ENC Table 7-3): no CRC or length error, not a runt. */
export function receivedOk(header: RxHeader): boolean {
  return (header.status & RSV_RECEIVED_OK) !== 0;
}

/** Frame bytes the stack gets: the byte count without the FCS. */
export function frameLength(header: RxHeader): number {
  return header.byteCount - FCS_BYTES;
}

/**
 * The FCS the chip stored after a frame that starts at `at` (its four bytes least significant
 * first, as they went on the wire, IEEE 802.3 §3.2.9).
 */
export function storedFcs(bytes: Uint8Array, at: number, header: RxHeader): number {
  const i = at + frameLength(header);
  return (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
}

/**
 * Ring bytes a packet takes: header, frame and FCS, and the pad byte the chip adds after an odd
 * count so that the next packet starts on an even address (DS-ENC p.43).
 */
export function packetSpan(byteCount: number): number {
  return RX_HEADER_BYTES + byteCount + (byteCount & 1);
}

/** `pointer` moved `bytes` on, wrapping from ERXND (`ringEnd`) to 0 as the chip does. */
export function ringAdvance(pointer: number, bytes: number, ringEnd: number): number {
  return (pointer + bytes) % (ringEnd + 1);
}

/** Bytes from `from` on up to `to` (exclusive), across the end of the ring when `to` is behind. */
export function ringDistance(from: number, to: number, ringEnd: number): number {
  const size = ringEnd + 1;
  return (to - from + size) % size;
}

/**
 * ERXRDPT that frees everything before `nextPacket`: the byte just behind it. The chip never
 * writes the byte at ERXRDPT (DS-ENC §7.2.4), and an even ERXRDPT can corrupt the ring
 * (errata #14); packets start even, so one behind is odd, and behind the start of the ring is
 * ERXND, odd too.
 */
export function releasePointer(nextPacket: number, ringEnd: number): number {
  return nextPacket === 0 ? ringEnd : nextPacket - 1;
}

/**
 * What a header read at `start` is:
 * - `'packet'`: a frame the chip wrote — `start` even and in the ring, a byte count from a bare
 *   Ethernet header to MAMXFL (`maxFrameLength`), and a next packet pointer exactly one packet on;
 * - `'too-long'`: the same, but a byte count over MAMXFL. The chip stores such a frame whole when
 *   MACON3.HFRMEN is set (DS-ENC Register 6-2: with it clear, reception is aborted at MAMXFL and
 *   the truncated frame fails the CRC filter); the next packet pointer is still where the byte
 *   count puts it (DS-ENC p.43), so the packet is skipped by it, a counted drop, not corruption;
 * - `'corrupt'`: anything else (odd or outside the ring, a count smaller than a header or larger
 *   than the ring, a next packet pointer that does not follow from the count): the driver lost
 *   its place in the ring or the chip's pointers went wrong; reading on would deliver garbage.
 */
export function classifyHeader(header: RxHeader, start: number, ringEnd: number, maxFrameLength: number): 'packet' | 'too-long' | 'corrupt' {
  const sane =
    start >= 0 &&
    start <= ringEnd &&
    (start & 1) === 0 &&
    header.byteCount >= MIN_BYTE_COUNT &&
    packetSpan(header.byteCount) < ringEnd + 1 &&
    (header.status & RSV_ZERO) === 0 &&
    header.next === ringAdvance(start, packetSpan(header.byteCount), ringEnd);
  if (!sane) return 'corrupt';
  return header.byteCount <= maxFrameLength ? 'packet' : 'too-long';
}

/** Whether the header read at `start` is a frame the chip wrote within MAMXFL (classifyHeader). */
export function isPlausibleHeader(header: RxHeader, start: number, ringEnd: number, maxFrameLength: number): boolean {
  return classifyHeader(header, start, ringEnd, maxFrameLength) === 'packet';
}
