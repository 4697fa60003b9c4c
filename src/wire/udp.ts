import type { Ipv4Address } from './address.js';
import { pseudoHeaderSum, sum16 } from './checksum.js';
import { parseErrors, type ParseError } from './errors.js';

/** UDP (RFC 768). */

/** Field offsets (RFC 768 "Format"). */
const SOURCE_PORT = 0;
const DESTINATION_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;
export const UDP_HEADER_LENGTH = 8;
const PROTOCOL_UDP = 17;

const ERRORS = parseErrors('udp', ['truncated', 'bad-length', 'bad-checksum']);

export class UdpPacket {
  readonly ok = true as const;
  private constructor(readonly bytes: Uint8Array) {}

  /** `bytes` is the IP payload. The length field must be ≥ 8 and fit in it. */
  static check(bytes: Uint8Array): UdpPacket | ParseError {
    if (bytes.length < UDP_HEADER_LENGTH) return ERRORS.truncated;
    const length = (bytes[LENGTH]! << 8) | bytes[LENGTH + 1]!;
    if (length < UDP_HEADER_LENGTH) return ERRORS['bad-length'];
    if (length > bytes.length) return ERRORS.truncated;
    return new UdpPacket(bytes);
  }

  get sourcePort(): number {
    return (this.bytes[SOURCE_PORT]! << 8) | this.bytes[SOURCE_PORT + 1]!;
  }

  get destinationPort(): number {
    return (this.bytes[DESTINATION_PORT]! << 8) | this.bytes[DESTINATION_PORT + 1]!;
  }

  get length(): number {
    return (this.bytes[LENGTH]! << 8) | this.bytes[LENGTH + 1]!;
  }

  get checksum(): number {
    return (this.bytes[CHECKSUM]! << 8) | this.bytes[CHECKSUM + 1]!;
  }

  /** Data up to the length field (bytes beyond it are ignored). */
  get payload(): Uint8Array {
    return this.bytes.subarray(UDP_HEADER_LENGTH, this.length);
  }

  /** RFC 768: a transmitted checksum of zero means the sender computed none. */
  verifyChecksum(source: Ipv4Address, destination: Ipv4Address): boolean {
    if (this.checksum === 0) return true;
    const length = this.length;
    return sum16(this.bytes, 0, length, pseudoHeaderSum(source, destination, PROTOCOL_UDP, length)) === 0xffff;
  }
}

export interface UdpRepr {
  readonly sourcePort: number;
  readonly destinationPort: number;
}

export const UdpRepr = {
  parse(packet: UdpPacket, source: Ipv4Address, destination: Ipv4Address, verifyChecksum = true): UdpRepr | ParseError {
    if (verifyChecksum && !packet.verifyChecksum(source, destination)) return ERRORS['bad-checksum'];
    return { sourcePort: packet.sourcePort, destinationPort: packet.destinationPort };
  },

  headerLength: UDP_HEADER_LENGTH,

  /**
   * Emit the datagram at `offset`: the header, then `payload` unless the caller already placed
   * the data after the header (pass `undefined` and `payloadLength`). Fills the checksum.
   */
  emit(
    repr: UdpRepr,
    buffer: Uint8Array,
    offset: number,
    source: Ipv4Address,
    destination: Ipv4Address,
    payload: Uint8Array | undefined,
    payloadLength = payload?.length ?? 0,
  ): number {
    const length = UDP_HEADER_LENGTH + payloadLength;
    buffer[offset + SOURCE_PORT] = repr.sourcePort >>> 8;
    buffer[offset + SOURCE_PORT + 1] = repr.sourcePort & 0xff;
    buffer[offset + DESTINATION_PORT] = repr.destinationPort >>> 8;
    buffer[offset + DESTINATION_PORT + 1] = repr.destinationPort & 0xff;
    buffer[offset + LENGTH] = length >>> 8;
    buffer[offset + LENGTH + 1] = length & 0xff;
    if (payload) buffer.set(payload, offset + UDP_HEADER_LENGTH);
    fillUdpChecksum(buffer, offset, length, source, destination);
    return offset + length;
  },
};

/**
 * Compute and store the checksum of the datagram at `offset` (`length` bytes, header included).
 * RFC 768: "If the computed checksum is zero, it is transmitted as all ones".
 */
export function fillUdpChecksum(buffer: Uint8Array, offset: number, length: number, source: Ipv4Address, destination: Ipv4Address): void {
  buffer[offset + CHECKSUM] = 0;
  buffer[offset + CHECKSUM + 1] = 0;
  let checksum = ~sum16(buffer, offset, length, pseudoHeaderSum(source, destination, PROTOCOL_UDP, length)) & 0xffff;
  if (checksum === 0) checksum = 0xffff;
  buffer[offset + CHECKSUM] = checksum >>> 8;
  buffer[offset + CHECKSUM + 1] = checksum & 0xff;
}
