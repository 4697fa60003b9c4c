import { readIpv4, writeIpv4, type Ipv4Address } from './address.js';
import { internetChecksum, sum16 } from './checksum.js';
import { parseErrors, type ParseError } from './errors.js';

/** The IPv4 header (RFC 791 §3.1). Options are skipped (IHL honoured), never interpreted. */

export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
} as const;

/** Field offsets (RFC 791 §3.1). */
const VERSION_IHL = 0;
const TOS = 1;
const TOTAL_LENGTH = 2;
const IDENTIFICATION = 4;
const FLAGS_FRAGMENT = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SOURCE = 12;
const DESTINATION = 16;
export const IPV4_MIN_HEADER_LENGTH = 20;
export const IPV4_MAX_TOTAL_LENGTH = 0xffff;

const FLAG_DONT_FRAGMENT = 0x4000;
const FLAG_MORE_FRAGMENTS = 0x2000;
const FRAGMENT_OFFSET_MASK = 0x1fff;

const ERRORS = parseErrors('ipv4', ['truncated', 'bad-version', 'bad-header-length', 'bad-length', 'bad-checksum']);

export class Ipv4Packet {
  readonly ok = true as const;
  private constructor(readonly bytes: Uint8Array) {}

  /**
   * RFC 1122 §3.2.1.1–3.2.1.2: version must be 4; the header length must be ≥ 5 words and fit;
   * the total length must cover the header and fit in what was received (link padding beyond it
   * is ignored). The checksum is checked by `verifyChecksum`, separately, as in smoltcp.
   */
  static check(bytes: Uint8Array): Ipv4Packet | ParseError {
    if (bytes.length < IPV4_MIN_HEADER_LENGTH) return ERRORS.truncated;
    if (bytes[VERSION_IHL]! >>> 4 !== 4) return ERRORS['bad-version'];
    const headerLength = (bytes[VERSION_IHL]! & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER_LENGTH) return ERRORS['bad-header-length'];
    if (headerLength > bytes.length) return ERRORS.truncated;
    const totalLength = (bytes[TOTAL_LENGTH]! << 8) | bytes[TOTAL_LENGTH + 1]!;
    if (totalLength < headerLength) return ERRORS['bad-length'];
    if (totalLength > bytes.length) return ERRORS.truncated;
    return new Ipv4Packet(bytes);
  }

  /**
   * A quoted header inside an ICMP error (RFC 792): the datagram is usually cut short, so only the
   * header itself must be present; `payload` is whatever of the rest was quoted.
   */
  static checkQuoted(bytes: Uint8Array): Ipv4Packet | ParseError {
    if (bytes.length < IPV4_MIN_HEADER_LENGTH) return ERRORS.truncated;
    if (bytes[VERSION_IHL]! >>> 4 !== 4) return ERRORS['bad-version'];
    const headerLength = (bytes[VERSION_IHL]! & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER_LENGTH) return ERRORS['bad-header-length'];
    if (headerLength > bytes.length) return ERRORS.truncated;
    return new Ipv4Packet(bytes);
  }

  get version(): number {
    return this.bytes[VERSION_IHL]! >>> 4;
  }

  get headerLength(): number {
    return (this.bytes[VERSION_IHL]! & 0x0f) * 4;
  }

  get tos(): number {
    return this.bytes[TOS]!;
  }

  get totalLength(): number {
    return (this.bytes[TOTAL_LENGTH]! << 8) | this.bytes[TOTAL_LENGTH + 1]!;
  }

  get identification(): number {
    return (this.bytes[IDENTIFICATION]! << 8) | this.bytes[IDENTIFICATION + 1]!;
  }

  private get flagsAndOffset(): number {
    return (this.bytes[FLAGS_FRAGMENT]! << 8) | this.bytes[FLAGS_FRAGMENT + 1]!;
  }

  get dontFragment(): boolean {
    return (this.flagsAndOffset & FLAG_DONT_FRAGMENT) !== 0;
  }

  get moreFragments(): boolean {
    return (this.flagsAndOffset & FLAG_MORE_FRAGMENTS) !== 0;
  }

  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (this.flagsAndOffset & FRAGMENT_OFFSET_MASK) * 8;
  }

  get isFragment(): boolean {
    return (this.flagsAndOffset & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK)) !== 0;
  }

  get ttl(): number {
    return this.bytes[TTL]!;
  }

  get protocol(): number {
    return this.bytes[PROTOCOL]!;
  }

  get checksum(): number {
    return (this.bytes[CHECKSUM]! << 8) | this.bytes[CHECKSUM + 1]!;
  }

  get source(): Ipv4Address {
    return readIpv4(this.bytes, SOURCE);
  }

  get destination(): Ipv4Address {
    return readIpv4(this.bytes, DESTINATION);
  }

  /** Header checksum over the whole header including options: the folded sum must be 0xffff. */
  verifyChecksum(): boolean {
    return sum16(this.bytes, 0, this.headerLength) === 0xffff;
  }

  /** The header including options. */
  get header(): Uint8Array {
    return this.bytes.subarray(0, this.headerLength);
  }

  /** Payload up to total length (link-layer padding excluded; for quoted headers, what was quoted). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength, Math.min(this.totalLength, this.bytes.length));
  }
}

/** The meaning of an IPv4 header. Emitted headers carry no options (IHL 5). */
export interface Ipv4Repr {
  readonly source: Ipv4Address;
  readonly destination: Ipv4Address;
  readonly protocol: number;
  /** Bytes after the header. */
  readonly payloadLength: number;
  readonly ttl: number;
  readonly tos?: number;
  readonly identification?: number;
  readonly dontFragment?: boolean;
  readonly moreFragments?: boolean;
  /** In bytes; must be a multiple of 8. */
  readonly fragmentOffset?: number;
}

export const Ipv4Repr = {
  /** Parse a checked packet; the checksum is verified unless the NIC did it (`verifyChecksum: false`). */
  parse(packet: Ipv4Packet, verifyChecksum = true): Ipv4Repr | ParseError {
    if (verifyChecksum && !packet.verifyChecksum()) return ERRORS['bad-checksum'];
    return {
      source: packet.source,
      destination: packet.destination,
      protocol: packet.protocol,
      payloadLength: packet.totalLength - packet.headerLength,
      ttl: packet.ttl,
      tos: packet.tos,
      identification: packet.identification,
      dontFragment: packet.dontFragment,
      moreFragments: packet.moreFragments,
      fragmentOffset: packet.fragmentOffset,
    };
  },

  headerLength: IPV4_MIN_HEADER_LENGTH,

  /** Write a 20-byte header with its checksum at `offset`; returns the payload offset. */
  emit(repr: Ipv4Repr, buffer: Uint8Array, offset = 0): number {
    emitIpv4Header(
      buffer,
      offset,
      repr.source,
      repr.destination,
      repr.protocol,
      repr.payloadLength,
      repr.ttl,
      repr.tos ?? 0,
      repr.identification ?? 0,
      repr.dontFragment ?? false,
      repr.moreFragments ?? false,
      repr.fragmentOffset ?? 0,
    );
    return offset + IPV4_MIN_HEADER_LENGTH;
  },
};

/** Positional form of `Ipv4Repr.emit` for the send path (no repr object per packet). */
export function emitIpv4Header(
  buffer: Uint8Array,
  offset: number,
  source: Ipv4Address,
  destination: Ipv4Address,
  protocol: number,
  payloadLength: number,
  ttl: number,
  tos: number,
  identification: number,
  dontFragment: boolean,
  moreFragments: boolean,
  fragmentOffset: number,
): void {
  const totalLength = IPV4_MIN_HEADER_LENGTH + payloadLength;
  const flags = (dontFragment ? FLAG_DONT_FRAGMENT : 0) | (moreFragments ? FLAG_MORE_FRAGMENTS : 0) | ((fragmentOffset >>> 3) & FRAGMENT_OFFSET_MASK);
  buffer[offset + VERSION_IHL] = 0x45;
  buffer[offset + TOS] = tos;
  buffer[offset + TOTAL_LENGTH] = totalLength >>> 8;
  buffer[offset + TOTAL_LENGTH + 1] = totalLength & 0xff;
  buffer[offset + IDENTIFICATION] = (identification >>> 8) & 0xff;
  buffer[offset + IDENTIFICATION + 1] = identification & 0xff;
  buffer[offset + FLAGS_FRAGMENT] = flags >>> 8;
  buffer[offset + FLAGS_FRAGMENT + 1] = flags & 0xff;
  buffer[offset + TTL] = ttl;
  buffer[offset + PROTOCOL] = protocol;
  buffer[offset + CHECKSUM] = 0;
  buffer[offset + CHECKSUM + 1] = 0;
  writeIpv4(buffer, offset + SOURCE, source);
  writeIpv4(buffer, offset + DESTINATION, destination);
  const checksum = internetChecksum(buffer, offset, IPV4_MIN_HEADER_LENGTH);
  buffer[offset + CHECKSUM] = checksum >>> 8;
  buffer[offset + CHECKSUM + 1] = checksum & 0xff;
}
